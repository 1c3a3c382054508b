"""`meterhub parse`: JSON lines out; bad input exits 2 with one line on stderr.

Through typer's CliRunner (in process) and once more as a real subprocess, where stdout and stderr
are separate pipes as a shell would see them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from meterhub.cli import app
from meterhub.protocols.crc import crc16_arc

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
runner = CliRunner()


def lines(output: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in output.splitlines() if line.strip()]


def test_tasmota_fixture_prints_one_json_reading() -> None:
    result = runner.invoke(
        app,
        [
            "parse",
            "--format", "tasmota",
            "--meter-id", "plug-1",
            "--timezone", "Asia/Kathmandu",
            str(FIXTURES / "tasmota" / "sensor_pow_loaded.json"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (document,) = lines(result.stdout)
    # 2024-03-30 10:15 at +05:45 is 04:30 UTC
    assert document["meter_id"] == "plug-1" and document["ts"] == "2024-03-30T04:30:00+00:00"
    assert document["import_kwh"] == 1234.567 and document["power_w"] == 812.0
    assert document["extra"] == {
        "TotalStartTime": "2023-01-15T10:02:11",
        "Yesterday": 3.21,
        "Today": 1.045,
        "Period": 12,
        "ApparentPower": 837,
        "ReactivePower": 203,
    }


@pytest.mark.parametrize(
    ("fixture", "meter_id", "import_kwh"),
    [
        ("gen1_em_status.json", "shelly-a4cf12f45a2b", 98.7654),
        ("gen1_3em_status.json", "shelly-c45bbe6bab12", 1999.999),
        ("gen2_pro3em_notify_full_status.json", "shellypro3em-0cb815fcaff4", 6.3283),
        ("gen2_proem_shelly_getstatus.json", "shelly-08f9e0e5a1b2", 346.679),
    ],
)
def test_shelly_fixtures_print_json_lines(fixture: str, meter_id: str, import_kwh: float) -> None:
    result = runner.invoke(app, ["parse", "--format", "shelly", str(FIXTURES / "shelly" / fixture)])
    assert result.exit_code == 0, result.output
    (document,) = lines(result.stdout)
    assert document["meter_id"] == meter_id and document["import_kwh"] == import_kwh


def test_shelly_notification_without_meter_data_prints_nothing() -> None:
    path = FIXTURES / "shelly" / "gen2_pro3em_notify_wifi_only.json"
    result = runner.invoke(app, ["parse", "--format", "shelly", str(path)])
    assert result.exit_code == 0 and result.stdout == ""


def test_native_batch_from_stdin() -> None:
    batch = {
        "readings": [
            {"ts": "2026-11-24T10:15:00+05:45", "import_kwh": 1234.567},
            {"ts": "2026-11-24T10:30:00+05:45", "import_kwh": 1234.601, "rssi": -71},
        ]
    }
    result = runner.invoke(
        app, ["parse", "--format", "native", "--meter-id", "M-1"], input=orjson.dumps(batch)
    )
    assert result.exit_code == 0, result.output
    first, second = lines(result.stdout)
    assert first == {"meter_id": "M-1", "ts": "2026-11-24T04:30:00+00:00", "import_kwh": 1234.567}
    assert second["extra"] == {"rssi": -71}


def dsmr_telegram(*lines: str) -> bytes:
    body = ("/ISk5\\2MT382-1000\r\n\r\n" + "".join(f"{line}\r\n" for line in lines) + "!").encode()
    return body + f"{crc16_arc(body):04X}\r\n".encode()


def extra_of(document: dict[str, object]) -> dict[str, object]:
    extra = document["extra"]
    assert isinstance(extra, dict)
    return extra


TELEGRAM = dsmr_telegram(
    f"0-0:96.1.1({b'K8EG004046395507'.hex().upper()})",
    "0-0:1.0.0(240715120000S)",
    "1-0:1.8.1(000004.426*kWh)",
)


def test_dsmr_without_timezone_reads_the_clock_in_europe_amsterdam() -> None:
    result = runner.invoke(app, ["parse", "--format", "dsmr"], input=TELEGRAM)
    assert result.exit_code == 0, result.output
    (document,) = lines(result.stdout)
    assert document["ts"] == "2024-07-15T10:00:00+00:00"  # 12:00 CEST
    assert document["meter_id"] == "K8EG004046395507"
    assert "frame_meter_id" not in extra_of(document)


def test_a_timezone_given_is_used_for_dsmr() -> None:
    result = runner.invoke(app, ["parse", "--format", "dsmr", "--timezone", "UTC"], input=TELEGRAM)
    assert result.exit_code == 0, result.output
    (document,) = lines(result.stdout)
    assert document["ts"] == "2024-07-15T12:00:00+00:00"
    assert extra_of(document)["clock_flag_mismatch"] is True  # S, and UTC has no summer time


def test_meter_id_replaces_the_frames_id_which_is_kept() -> None:
    result = runner.invoke(app, ["parse", "--format", "dsmr", "--meter-id", "M-1"], input=TELEGRAM)
    assert result.exit_code == 0, result.output
    (document,) = lines(result.stdout)
    assert document["meter_id"] == "M-1"
    assert extra_of(document)["frame_meter_id"] == "K8EG004046395507"


def test_help_says_what_meter_id_and_timezone_do() -> None:
    result = runner.invoke(app, ["parse", "--help"])
    text = " ".join(result.stdout.replace("│", " ").split())  # the help's box, unwrapped
    assert "replaces the id the frame names, which is kept as extra.frame_meter_id" in text
    assert "default: the format's own, Europe/Amsterdam for dsmr" in text


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (f"1-0:1.8.2({'9' * 309}*kWh)", "non_finite"),
        ("1-0:1.8.2(-000004.426*kWh)", "negative_register"),
    ],
)
def test_impossible_registers_exit_2_with_the_native_paths_code(line: str, code: str) -> None:
    telegram = dsmr_telegram("0-0:1.0.0(240715120000S)", "1-0:1.8.1(000004.426*kWh)", line)
    result = runner.invoke(app, ["parse", "--format", "dsmr", "--meter-id", "M-1"], input=telegram)
    assert result.exit_code == 2
    assert result.stdout == ""
    (stderr_line,) = result.stderr.splitlines()
    assert stderr_line.startswith(f"{code}: ")


@pytest.mark.parametrize(
    ("args", "stdin", "stderr_start"),
    [
        (["--format", "tasmota", "--meter-id", "p1"], b'{"ENERGY": ', "malformed_json: "),
        (["--format", "shelly"], b"[]", "wrong_shape: "),
        (["--format", "tasmota"], b'{"ENERGY": {}}', "missing_meter_id: "),
        (["--format", "modbus"], b"{}", "unknown_format: "),
        (["--format", "tasmota", "--timezone", "Mars/Olympus"], b"{}", "bad_timezone: "),
        (["--format", "shelly", "/nonexistent/status.json"], b"", "cannot read "),
        (["--format", "dlms", "--key", "not-hex"], b"", "bad_key: --key must be hexadecimal"),
        (["--format", "dlms", "--auth-key", "00" * 15], b"", "bad_key: --auth-key must be 16"),
    ],
)
def test_invalid_input_exits_2_with_one_line(
    args: list[str], stdin: bytes, stderr_start: str
) -> None:
    result = runner.invoke(app, ["parse", *args], input=stdin)
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(stderr_start)


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "meterhub.cli", "parse", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_subprocess_bad_json_exits_2_with_one_stderr_line_and_no_stdout() -> None:
    done = run("--format", "shelly", stdin=b"{not json")
    assert done.returncode == 2
    assert done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith("malformed_json: ")


def test_subprocess_missing_file_exits_2() -> None:
    done = run("--format", "tasmota", "--meter-id", "p1", "/nonexistent/sensor.json")
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().splitlines() == [
        "cannot read /nonexistent/sensor.json: No such file or directory"
    ]


def test_subprocess_prints_json_lines_on_stdout_only() -> None:
    path = FIXTURES / "shelly" / "gen2_pro3em_shelly_getstatus.json"
    done = run("--format", "shelly", "--meter-id", "pro3em-1", str(path))
    assert done.returncode == 0 and done.stderr == b""
    (document,) = lines(done.stdout.decode())
    assert document["meter_id"] == "pro3em-1"
    assert document["ts"] == "2023-04-04T13:10:39+00:00"  # sys.unixtime 1680613839


def test_the_edge_gateway_refuses_a_bad_key_as_parse_does() -> None:
    # One key check for both commands; the gateway reports it as a bad option.
    result = runner.invoke(
        app,
        ["edge", "--source", "file:/dev/null", "--format", "dlms", "--mqtt-url",
         "mqtt://M-1:s@127.0.0.1:1", "--key", "00" * 15],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--key must be 16 bytes (32 hex digits)" in result.output
