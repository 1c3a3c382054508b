"""The FORMATS registry: every entry resolves to a parser; an unknown name is a ParseError."""

from __future__ import annotations

import inspect

import pytest

from meterhub.protocols.base import FORMATS, ParseContext, ParseError, parse, parser_for


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_registered_format_resolves_to_a_parser(name: str) -> None:
    parser = parser_for(name)
    assert callable(parser)
    # the common surface: parse(data, context)
    assert list(inspect.signature(parser).parameters)[:2] == ["data", "context"]


def test_registry_entries_are_module_colon_function() -> None:
    for name, target in FORMATS.items():
        module_name, _, function_name = target.partition(":")
        assert module_name.startswith("meterhub.protocols."), name
        assert function_name.isidentifier(), name


def test_unknown_format_is_a_parse_error_naming_the_known_ones() -> None:
    with pytest.raises(ParseError) as caught:
        parser_for("modbus-rtu")
    assert caught.value.code == "unknown_format"
    assert "tasmota" in caught.value.message and "shelly" in caught.value.message
    with pytest.raises(ParseError) as again:
        parse("nope", b"{}", ParseContext())
    assert again.value.code == "unknown_format"
