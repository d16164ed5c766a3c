"""Annotation and ConfigMap value syntax, parsed exactly as Knative's Go code parses it.

Knative reads annotation values with `strconv.ParseInt/ParseFloat/ParseBool/Atoi` and
`time.ParseDuration`; Python's `int()`/`float()` accept more (spaces, underscores, `1_000`,
`infinity` with spaces…), so a value Python accepts could still be rejected by Knative's
webhook. These parsers accept what Go accepts and nothing else, and tell a syntax error
from an out-of-range one (Knative reports the two differently).

Also here: small syntax checks the translator needs without importing `urllib` (the
translator may not import network modules; see the import-linter contract).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class ParseError(ValueError):
    """The text is not a value of the expected type (Go: strconv.ErrSyntax)."""


class RangeError(ValueError):
    """The text is well-formed but does not fit the type (Go: strconv.ErrRange)."""


_INT_RE = re.compile(r"[+-]?[0-9]+\Z")


def parse_int(text: str, bits: int = 32) -> int:
    """`strconv.ParseInt(text, 10, bits)`: optional sign and decimal digits only."""
    if not _INT_RE.match(text):
        raise ParseError(f"{text!r} is not an integer")
    value = int(text)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not lo <= value <= hi:
        raise RangeError(f"{text} is outside the {bits}-bit integer range [{lo}, {hi}]")
    return value


_DEC_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_HEX_FLOAT_RE = re.compile(r"[+-]?0[xX](?:_?[0-9a-fA-F])*(?:\.(?:[0-9a-fA-F]_?)*)?[pP][+-]?[0-9]+\Z")
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf}
_SPECIAL |= {"+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan}


def parse_float(text: str) -> float:
    """`strconv.ParseFloat(text, 64)`, including `Inf`/`NaN` and hex floats.

    Overflow to infinity is a RangeError, as in Go; the special spellings return ±inf/nan.
    """
    special = _SPECIAL.get(text.lower())
    if special is not None:
        return special
    if _DEC_FLOAT_RE.match(text):
        value = float(text)
    elif _HEX_FLOAT_RE.match(text):
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-").replace("_", "")
        try:
            value = sign * float.fromhex(body)
        except (ValueError, OverflowError):
            raise ParseError(f"{text!r} is not a number") from None
    else:
        raise ParseError(f"{text!r} is not a number")
    if math.isinf(value):
        raise RangeError(f"{text} is too large for a 64-bit float")
    return value


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(text: str) -> bool:
    """`strconv.ParseBool`: 1/t/T/TRUE/true/True and their false counterparts only."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParseError(f"{text!r} is not a boolean (use true or false)")


NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "µs": MICROSECOND,  # U+00B5 micro sign
    "μs": MICROSECOND,  # U+03BC Greek mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def parse_duration(text: str) -> int:
    """`time.ParseDuration`: returns nanoseconds. `"90s"`, `"1m30s"`, `"1.5h"`, `"0"`."""
    s = text
    negative = False
    if s[:1] in ("+", "-"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ParseError(f"{text!r} is not a duration (examples: 60s, 1m30s, 1h)")
    total = Fraction(0)
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None or m.end() == pos:  # pragma: no cover - the pattern always matches something
            raise ParseError(f"{text!r} is not a duration (examples: 60s, 1m30s, 1h)")
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise ParseError(f"{text!r} is not a duration (examples: 60s, 1m30s, 1h)")
        if not unit:
            raise ParseError(f"{text!r} is missing a unit (ns, us, ms, s, m, h)")
        if unit not in _UNITS:
            raise ParseError(f"{text!r} has an unknown unit {unit!r} (use ns, us, ms, s, m or h)")
        number = Fraction(int(whole or "0"))
        if frac:
            number += Fraction(int(frac), 10 ** len(frac))
        total += number * _UNITS[unit]
        pos = m.end()
        if total > INT64_MAX:
            raise RangeError(f"{text!r} is too long a duration")
    nanos = math.floor(total)
    return -nanos if negative else nanos


def format_duration(nanos: int) -> str:
    """Seconds-precision rendering used in messages: `60s`, `1m30s`, `1h0m0s` (like Go's String)."""
    if nanos % SECOND:
        return f"{Decimal(nanos) / Decimal(SECOND)}s"
    seconds = nanos // SECOND
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{sign}{h}h{m}m{s}s"
    if m:
        return f"{sign}{m}m{s}s"
    return f"{sign}{s}s"


def decimal_str(value: float) -> str:
    """Shortest exact decimal text for a float, never in exponent form: 0.5, 100, 12.25."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text


# Kubernetes' resource.Quantity (apimachinery `pkg/api/resource/quantity.go`), the one grammar
# for every quantity knscale reads: resource requests and size limits, and KEDA's targets (KEDA
# parses a trigger's `value` and the HPA `tolerance` with the same ParseQuantity).
#   <quantity> ::= <sign>? <number> <suffix>?
#   <number>   ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
#   <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | k | M | G | T | P | E | (e|E) <sign>? <digits>
# Only ASCII digits (`\d` would take any Unicode digit). The exponent is an integer, as in Go.
_QUANTITY_RE = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<binary>[KMGTPE]i)|(?P<decimal>[numkMGTPE])|[eE](?P<exponent>[+-]?[0-9]+))?"
)
_BINARY_SUFFIX: dict[str, int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL_SUFFIX: dict[str, int] = {
    "n": -9,
    "u": -6,
    "m": -3,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
# Far beyond any quantity a cluster uses; the bounds keep a hostile `1e999999999` (or a number
# of 100k digits) from costing the webhook seconds of CPU or Python's int-conversion limit.
_MAX_QUANTITY_EXPONENT = 1000
_MAX_QUANTITY_DIGITS = 1000


def parse_quantity(text: str) -> Fraction:
    """A Kubernetes resource quantity (`500m`, `1.5Gi`, `2e3`, `-1`) as an exact number.

    Signs are part of the grammar; callers that need a non-negative or positive amount (a
    resource request, a size limit, a KEDA target) check the value.
    """
    m = _QUANTITY_RE.fullmatch(text)
    if m is None:
        raise ParseError(f"{text!r} is not a Kubernetes quantity (examples: 500m, 2, 128Mi)")
    number, binary, decimal, exponent = m.group("number", "binary", "decimal", "exponent")
    if len(number) > _MAX_QUANTITY_DIGITS:
        raise ParseError(f"{text[:40]!r}… is too long to be a Kubernetes quantity")
    value = Fraction(number)
    if binary is not None:
        return value * _BINARY_SUFFIX[binary]
    power = _DECIMAL_SUFFIX[decimal] if decimal is not None else 0
    if exponent is not None:
        # Read the exponent's digits only when few: int() of thousands of digits is refused.
        short = len(exponent.lstrip("+-").lstrip("0")) <= len(str(_MAX_QUANTITY_EXPONENT))
        power = int(exponent) if short else _MAX_QUANTITY_EXPONENT + 1
    if abs(power) > _MAX_QUANTITY_EXPONENT:
        raise ParseError(f"{text[:40]!r}: the exponent is out of range for a Kubernetes quantity")
    return value * Fraction(10) ** power


def is_quantity(text: str) -> bool:
    """Whether `text` is a Kubernetes quantity (of any sign)."""
    try:
        parse_quantity(text)
    except ParseError:
        return False
    return True


def binary_si(nbytes: int) -> str:
    """Canonical BinarySI text of a whole number of bytes, as Kubernetes prints it: 100Mi, 1536Ki."""
    if -1024 < nbytes < 1024:
        return str(nbytes)
    mantissa, suffix = nbytes, ""
    for candidate in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"):
        if mantissa % 1024:
            break
        mantissa //= 1024
        suffix = candidate
    return f"{mantissa}{suffix}"


def cpu_quantity(cores: float) -> str:
    """Cores as a quantity, rounded up to whole millicores: 0.5 → 500m, 2 → 2, 1.2501 → 1251m."""
    millis = math.ceil(Fraction(Decimal(repr(cores))) * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


@dataclass(frozen=True, slots=True)
class HttpUrl:
    scheme: str
    host: str
    port: int | None
    rest: str


_URL_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^/?#@\s]*@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.~%-]+)(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<rest>[/?#][^\s]*)?\Z"
)


def parse_http_url(text: str) -> HttpUrl:
    """An absolute http(s) URL with a host (what a Prometheus server address must be)."""
    m = _URL_RE.match(text)
    if m is None:
        raise ParseError(f"{text!r} is not an absolute URL such as http://prometheus.monitoring.svc:9090")
    scheme = m.group("scheme").lower()
    if scheme not in ("http", "https"):
        raise ParseError(f"{text!r} uses scheme {scheme!r}; Prometheus is reached over http or https")
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise ParseError(f"{text!r} has port {port} outside 1-65535")
    return HttpUrl(scheme, m.group("host"), port, m.group("rest") or "")
