"""Quantities parse, round and print back as apimachinery's resource.Quantity does."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.types.quantity import (
    ERR_FORMAT,
    ERR_NUMERIC,
    ERR_SUFFIX,
    QuantityError,
    canonical,
    format_quantity,
    is_quantity,
    millicores,
    parse_quantity,
    parse_quantity_with_format,
    to_bytes,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", "0"),
        ("1", "1"),
        ("0.5", "0.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("+1", "1"),
        ("-1", "-1"),
        ("007", "7"),
        # decimal SI suffixes
        ("1n", "0.000000001"),
        ("1u", "0.000001"),
        ("500m", "0.5"),
        ("2k", "2000"),
        ("1M", "1000000"),
        ("1G", "1000000000"),
        ("1T", "1e12"),
        ("1P", "1e15"),
        ("1E", "1e18"),
        ("1.5G", "1500000000"),
        # binary SI suffixes
        ("1Ki", "1024"),
        ("128Mi", str(128 * 2**20)),
        ("1Gi", str(2**30)),
        ("1Ti", str(2**40)),
        ("1Pi", str(2**50)),
        ("1Ei", str(2**60)),
        ("1.5Gi", str(3 * 2**29)),
        ("0.5Ki", "512"),
        # exponents
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("1e+3", "1000"),
        ("1e-3", "0.001"),
        ("2.5e2", "250"),
        ("1e0", "1"),
        # below a nanounit rounds up (away from zero)
        ("0.1n", "0.000000001"),
        ("1.5n", "0.000000002"),
        ("-0.1n", "-0.000000001"),
        # binary values are capped at the int64 maximum
        ("9999999Ei", str(2**63 - 1)),
    ],
)
def test_parse_values(text: str, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize(
    ("raw", "value"),
    [(1, "1"), (0, "0"), (0.5, "0.5"), (2.0, "2"), (1e-07, "0.0000001"), (Decimal("1.5"), "1.5")],
)
def test_parse_numbers(raw: int | float | Decimal, value: str) -> None:
    assert parse_quantity(raw) == Decimal(value)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("12Qi", ERR_FORMAT),
        ("abc", ERR_FORMAT),
        ("1.2.3", ERR_FORMAT),
        ("", ERR_FORMAT),
        (" 1", ERR_FORMAT),
        ("1 ", ERR_FORMAT),
        ("1Gi ", ERR_FORMAT),
        ("1,5", ERR_FORMAT),
        ("-", ERR_NUMERIC),
        ("+", ERR_NUMERIC),
        (".", ERR_NUMERIC),
        ("Mi", ERR_NUMERIC),
        ("e3", ERR_NUMERIC),
        ("1e", ERR_SUFFIX),
        ("1K", ERR_SUFFIX),
        ("1Ki3", ERR_SUFFIX),
        ("1mi", ERR_SUFFIX),
        ("1e-", ERR_SUFFIX),
        ("1kk", ERR_SUFFIX),
    ],
)
def test_bad_input(text: str, detail: str) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    assert info.value.detail == detail
    assert repr(text) in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not is_quantity(text)


@pytest.mark.parametrize("raw", [True, None, [], float("inf"), float("nan")])
def test_bad_types(raw: object) -> None:
    assert not is_quantity(raw)
    with pytest.raises(ValueError):
        parse_quantity(raw)  # type: ignore[arg-type]


def test_regex_message_is_upstreams() -> None:
    assert ERR_FORMAT == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("1", "DecimalSI"),
        ("1k", "DecimalSI"),
        ("1E", "DecimalSI"),
        ("1Ki", "BinarySI"),
        ("1e3", "DecimalExponent"),
    ],
)
def test_format_follows_suffix(text: str, fmt: str) -> None:
    assert parse_quantity_with_format(text)[1] == fmt


@pytest.mark.parametrize(
    ("text", "cores"),
    [
        ("1", 1000),
        ("500m", 500),
        ("0.1", 100),
        ("1n", 1),
        ("1.0001m", 2),
        ("250m", 250),
        ("2k", 2_000_000),
        ("-1n", 0),
        ("0", 0),
    ],
)
def test_millicores_round_up(text: str, cores: int) -> None:
    assert millicores(text) == cores


@pytest.mark.parametrize(
    ("text", "size"),
    [("128Mi", 134217728), ("1G", 10**9), ("1Ki", 1024), ("500m", 1), ("1.5", 2), ("0", 0), ("1e3", 1000)],
)
def test_to_bytes_round_up(text: str, size: int) -> None:
    assert to_bytes(text) == size


def test_helpers_accept_decimals_and_numbers() -> None:
    assert millicores(Decimal("0.25")) == 250
    assert to_bytes(1024) == 1024
    assert millicores(0.5) == 500


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("0", "0"),
        ("0Mi", "0"),
        ("1", "1"),
        ("1000m", "1"),
        ("1.5", "1500m"),
        ("0.5", "500m"),
        ("1500", "1500"),
        ("2000", "2k"),
        ("1000000", "1M"),
        ("0.0005", "500u"),
        ("1E", "1E"),
        ("1000E", "1000E"),
        ("1.5Gi", "1536Mi"),
        ("2048Ki", "2Mi"),
        ("1024", "1024"),
        ("1Ki", "1Ki"),
        ("0.5Ki", "512"),
        ("100Mi", "100Mi"),
        ("1e3", "1e3"),
        ("1500e0", "1500"),
        ("1e-3", "1e-3"),
        ("-1.5", "-1500m"),
        ("-2Ki", "-2Ki"),
    ],
)
def test_canonical(text: str, shown: str) -> None:
    assert canonical(text) == shown


def test_format_quantity_defaults_to_decimal_si() -> None:
    assert format_quantity(Decimal("0.25")) == "250m"
    assert format_quantity(2048, "BinarySI") == "2Ki"
    assert format_quantity(1000, "DecimalExponent") == "1e3"
    # BinarySI below 1024 or fractional falls back to DecimalSI, as upstream.
    assert format_quantity(Decimal("1.5"), "BinarySI") == "1500m"


def test_parsing_is_exact() -> None:
    assert parse_quantity("0.1") + parse_quantity("0.2") == parse_quantity("300m")
    assert parse_quantity("1Ei") - 1 == Decimal(2**60 - 1)
