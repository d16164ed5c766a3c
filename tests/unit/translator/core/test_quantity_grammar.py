"""One quantity grammar (issue 10): `translator.core.values.parse_quantity` against the official
client's `kubernetes.utils.quantity.parse_quantity`.

The translator may not import `kubernetes` (an import-linter contract); a test may. The official
parser is laxer than Kubernetes itself (it takes `1K`, `1e3m`, ` 1 `, `Infinity` through Python's
Decimal), so the property is one-sided: whatever knscale accepts, the official client accepts
with exactly the same value; and every string of the apimachinery grammar knscale accepts.
Deliberately refused although Go would parse them: an exponent beyond ±1000 and numbers of more
than 1000 digits (they would cost the webhook seconds of CPU; no cluster quantity is that large).
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kubernetes.utils.quantity import parse_quantity as official_parse_quantity

from translator.core.values import ParseError, is_quantity, parse_quantity

DIGITS = st.text("0123456789", min_size=1, max_size=8)
SIGN = st.sampled_from(["", "+", "-"])
BINARY = st.sampled_from(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"])
DECIMAL = st.sampled_from(["n", "u", "m", "", "k", "M", "G", "T", "P", "E"])


@st.composite
def numbers(draw: st.DrawFn) -> str:
    whole, frac = draw(DIGITS), draw(DIGITS)
    shape = draw(st.sampled_from(["int", "int.frac", "int.", ".frac"]))
    return {"int": whole, "int.frac": f"{whole}.{frac}", "int.": f"{whole}.", ".frac": f".{frac}"}[shape]


@st.composite
def grammar_quantities(draw: st.DrawFn) -> str:
    """A string of apimachinery's <quantity> grammar (exponents kept small, see module doc)."""
    suffix = draw(
        st.one_of(
            BINARY,
            DECIMAL,
            st.builds(lambda e, s, n: f"{e}{s}{n}", st.sampled_from("eE"), SIGN, st.integers(0, 40).map(str)),
        )
    )
    return f"{draw(SIGN)}{draw(numbers())}{suffix}"


def _official(text: str) -> Fraction:
    # The official parser multiplies in the current Decimal context (28 digits by default), so
    # `10000.000001Ei` would come back rounded; give it room to be exact.
    with localcontext() as ctx:
        ctx.prec = 200
        value: Decimal = official_parse_quantity(text)
    return Fraction(value)


@given(grammar_quantities())
@example("500m")
@example("1.5Gi")
@example("-2e-3")
@example("1.G")
@example("1E")
@example(".5Ki")
def test_every_grammar_string_parses_to_the_official_value(text: str) -> None:
    assert _official(text) == parse_quantity(text)


# Characters the two parsers might read differently: digits, signs, dots, every suffix letter,
# letters no suffix uses, spaces and a non-ASCII digit.
ALPHABET = "0123456789+-.eEKMGTPEinumkKbB _١"


@given(st.text(ALPHABET, max_size=10))
@example("1K")
@example("1e3m")
@example(" 1")
@example("1ki")
@example("1e1.5")
@example("١")
def test_what_knscale_accepts_the_official_client_accepts_with_the_same_value(text: str) -> None:
    try:
        ours = parse_quantity(text)
    except ParseError:
        return  # the official parser may accept more (see the module docstring)
    assert _official(text) == ours


@pytest.mark.parametrize(
    "text", ["1K", "1e3m", " 1", "1 ", "Infinity", "1_000", "1ki", "1e1.5", "١", "1e", "e3"]
)
def test_knscale_follows_go_where_the_official_python_client_is_lax(text: str) -> None:
    assert not is_quantity(text)


@pytest.mark.parametrize("text", ["1e1001", "1e-1001", "1e" + "9" * 5000, "1" * 1001])
def test_absurd_quantities_are_a_parse_error_not_a_hang(text: str) -> None:
    with pytest.raises(ParseError):
        parse_quantity(text)
