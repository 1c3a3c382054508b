"""The shared OBIS table: code spellings, unit conversion, registers into reading fields."""

from __future__ import annotations

import pytest

from meterhub.protocols.base import ParseError
from meterhub.protocols.obis import (
    OBIS_FIELDS,
    ObisValue,
    convert,
    in_reading,
    normalise_obis,
    obis_from_bytes,
    reading_fields,
)


@pytest.mark.parametrize(
    ("spelling", "normalised"),
    [
        ("1-0:1.8.0", "1-0:1.8.0"),
        ("1-0:1.8.0*255", "1-0:1.8.0"),  # EasyMeter, mode C
        ("1-0:1.8.0.255", "1-0:1.8.0"),
        ("1.8.0", "1-0:1.8.0"),  # IEC short form: electricity
        ("1-0:01.08.00", "1-0:1.8.0"),
        ("0-0:c.1.0*255", "0-0:C.1.0"),
        ("1-0:1.8.1*07", "1-0:1.8.1*7"),  # a billing period is a different value
    ],
)
def test_normalise_obis(spelling: str, normalised: str) -> None:
    assert normalise_obis(spelling) == normalised


@pytest.mark.parametrize("bad", ["", "1-0:", "kWh", "1-0:1.8.0)", "1-0:1.8.0*9999"])
def test_normalise_obis_refuses_what_is_not_a_code(bad: str) -> None:
    with pytest.raises(ParseError) as refused:
        normalise_obis(bad)
    assert refused.value.code == "bad_obis"


def test_obis_from_dlms_logical_name() -> None:
    assert obis_from_bytes(bytes([1, 0, 1, 8, 0, 255])) == "1-0:1.8.0"
    assert obis_from_bytes(bytes([1, 0, 1, 8, 1, 7])) == "1-0:1.8.1*7"


def test_convert_is_exact_in_decimal() -> None:
    # 0.908 * 1000 in binary floating point is 908.0000000000001
    assert convert("0.908", "kW", OBIS_FIELDS["1-0:1.7.0"]) == 908.0
    assert convert("005017120", "Wh", OBIS_FIELDS["1-0:1.8.1"]) == 5017.12
    assert convert(12056, "mA", OBIS_FIELDS["1-0:31.7.0"]) == 12.056


def test_convert_refuses_a_unit_that_does_not_fit() -> None:
    with pytest.raises(ParseError) as refused:
        convert("1.0", "V", OBIS_FIELDS["1-0:1.8.0"])
    assert refused.value.code == "bad_unit"


def test_import_is_the_total_when_sent() -> None:
    fields = reading_fields(
        {
            "1-0:1.8.0": ObisValue(10.0, "kWh"),
            "1-0:1.8.1": ObisValue(4.0, "kWh"),
            "1-0:1.8.2": ObisValue(5.0, "kWh"),
        }
    )
    assert fields["import_kwh"] == 10.0
    assert fields["import_kwh_by_tariff"] == {"1": 4.0, "2": 5.0}


def test_import_is_the_sum_of_tariffs_without_a_total() -> None:
    fields = reading_fields(
        {"1-0:1.8.1": ObisValue(800.1, "kWh"), "1-0:1.8.2": ObisValue(434.467, "kWh")}
    )
    assert fields["import_kwh"] == 1234.567  # not 1234.5670000000002


def test_power_is_net_import() -> None:
    fields = reading_fields({"1-0:1.7.0": ObisValue(0.0, "W"), "1-0:2.7.0": ObisValue(2601, "W")})
    assert fields["power_w"] == -2601.0


def test_voltage_and_current_take_l1() -> None:
    fields = reading_fields(
        {
            "1-0:32.7.0": ObisValue(230.1, "V"),
            "1-0:52.7.0": ObisValue(231.0, "V"),
            "1-0:31.7.0": ObisValue(2.8, "A"),
        }
    )
    assert (fields["voltage_v"], fields["current_a"]) == (230.1, 2.8)
    assert not in_reading("1-0:32.7.0")  # all phases stay in extra
    assert in_reading("1-0:1.8.1") and not in_reading("1-0:2.8.1")
