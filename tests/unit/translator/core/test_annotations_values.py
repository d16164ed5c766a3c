"""Go-compatible value syntax: what Knative's strconv/time parsing accepts, and nothing more."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from translator.core.values import (
    ParseError,
    RangeError,
    binary_si,
    cpu_quantity,
    decimal_str,
    format_duration,
    parse_bool,
    parse_duration,
    parse_float,
    parse_http_url,
    parse_int,
    parse_quantity,
)

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("10", 10), ("+5", 5), ("-3", -3), ("2147483647", 2**31 - 1), ("007", 7)],
)
def test_parse_int_accepts_go_syntax(text: str, expected: int) -> None:
    assert parse_int(text) == expected


@pytest.mark.parametrize("text", ["", " 1", "1 ", "1.0", "1e3", "1_000", "0x10", "one", "--1"])
def test_parse_int_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse_int(text)


def test_parse_int_range_error_is_distinct() -> None:
    with pytest.raises(RangeError):
        parse_int("2147483648")
    assert parse_int("2147483648", 64) == 2**31


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1.0), ("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("1e2", 100.0), ("-1", -1.0), ("0x1p-2", 0.25)],
)
def test_parse_float(text: str, expected: float) -> None:
    assert parse_float(text) == expected


def test_parse_float_specials_like_go() -> None:
    assert parse_float("Inf") == math.inf
    assert parse_float("-infinity") == -math.inf
    assert math.isnan(parse_float("NaN"))
    with pytest.raises(ParseError):
        parse_float("+nan")  # Go accepts a sign only before inf


@pytest.mark.parametrize("text", ["", " 1", "1_0", "1e", "abc", "1.2.3", "0x1", "infinite"])
def test_parse_float_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse_float(text)


def test_parse_float_overflow_is_range_error() -> None:
    with pytest.raises(RangeError):
        parse_float("1e400")


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_parse_bool_true(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["yes", "on", "tRuE", " true", ""])
def test_parse_bool_rejects_yaml_style(text: str) -> None:
    with pytest.raises(ParseError):
        parse_bool(text)


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("60s", 60 * S),
        ("1m30s", 90 * S),
        ("1.5h", 5400 * S),
        ("6500ms", 6_500_000_000),
        ("-2s", -2 * S),
        ("1h0m0s", 3600 * S),
        ("3µs", 3000),
        ("3μs", 3000),
        ("1.s", S),
        (".5s", S // 2),
    ],
)
def test_parse_duration(text: str, nanos: int) -> None:
    assert parse_duration(text) == nanos


@pytest.mark.parametrize("text", ["", "60", "1d", "s", ".s", "1.5.5s", " 1s", "1 s", "1S", "-", "+"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse_duration(text)


def test_parse_duration_overflow() -> None:
    with pytest.raises(RangeError):
        parse_duration("3000000h")


def test_format_duration() -> None:
    assert format_duration(90 * S) == "1m30s"
    assert format_duration(1_500_000_000) == "1.5s"
    assert format_duration(7200 * S) == "2h0m0s"


@pytest.mark.parametrize(
    ("value", "text"), [(0.5, "0.5"), (100.0, "100"), (12.25, "12.25"), (1e20, "100000000000000000000")]
)
def test_decimal_str_is_exact_and_plain(value: float, text: str) -> None:
    assert decimal_str(value) == text


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (100 * 2**20, "100Mi"),
        (1536 * 1024, "1536Ki"),
        (2**30, "1Gi"),
        (1000, "1000"),
        (105381888, "102912Ki"),
    ],
)
def test_binary_si_matches_kubernetes_canonical_form(nbytes: int, text: str) -> None:
    assert binary_si(nbytes) == text


@pytest.mark.parametrize(("cores", "text"), [(0.5, "500m"), (2.0, "2"), (1.2501, "1251m"), (0.001, "1m")])
def test_cpu_quantity_rounds_up_to_millicores(cores: float, text: str) -> None:
    assert cpu_quantity(cores) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", Fraction(1, 2)), ("2", Fraction(2)), ("128Mi", Fraction(128 * 2**20)), ("1e3", Fraction(1000))],
)
def test_parse_quantity(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "1.5.5", "10MB", "abc", "1 Mi"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse_quantity(text)


def test_http_url() -> None:
    url = parse_http_url("http://prometheus.monitoring.svc:9090/prom")
    assert (url.scheme, url.host, url.port, url.rest) == ("http", "prometheus.monitoring.svc", 9090, "/prom")
    assert parse_http_url("https://[::1]:8443").host == "[::1]"


@pytest.mark.parametrize(
    "text", ["prometheus:9090", "/api", "ftp://x", "http://", "http://host:99999", "http://a b", ""]
)
def test_http_url_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse_http_url(text)
