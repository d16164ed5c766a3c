"""What may be quoted back: the one redaction of secrets in values and texts that leave knscale
(lint output in every format, admission denials and warnings, logs).

Applied to the raw text, before anything trims, lowers or re-quotes it: a source that starts
with whitespace or a control character, or has a space before `://`, is not a URI to a parser
but still carries its password. `Rule.finding` applies `redact_text` to every value, message
and fix, so no finding can carry userinfo whatever rule built it; the source keys' values also
go through `redact_source` (`injection.reader`), which hides a query or fragment too.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"

# Userinfo in free text, three ways it can appear:
#  * after '//' up to the last '@' before the next '/', '?' or '#' (spaces included:
#    `https://u:p ss@h`);
#  * at the very start, up to an '@' before any '/', '?' or '#' (`u:p@bucket`);
#  * any run of non-separators with a ':' before an '@' (`https:/\x00/u:p@h`, where no '//' is).
# As one regular expression (`(?<=//)[^/?#]*@|^[^/?#]*@|[^\s/?#'"]+:[^\s/?#'"@]*@`) the third
# form is tried from every position of a long run and backtracks over all of it: a 70 KB value
# took 88 s of CPU (fuzz seed 3001). The same matches found in one pass: no form crosses '/', '?'
# or '#', so each segment between them is decided alone, and the third form only from the start
# of a word, since a word that does not match from its start matches from nowhere inside it.
_SEGMENT = re.compile(r"[^/?#]+")
_WORD = re.compile(r"[^\s'\"]+")


def redact_text(text: str) -> str:
    """`text` with any userinfo (`user:password@`) replaced; the rest as written. Linear time."""
    if "@" not in text:  # the usual case: nothing to do
        return text
    parts: list[str] = []
    kept = 0  # text[:kept] is decided and in parts
    for segment in _SEGMENT.finditer(text):
        start, end = segment.span()
        last_at = text.rfind("@", start, end)
        if last_at < 0:
            continue
        if start == 0 or text[start - 2 : start] == "//":
            parts += (text[kept:start], REDACTED)
            kept = last_at
            continue
        for word in _WORD.finditer(text, start, end):
            w_start, w_end = word.span()
            w_last_at = text.rfind("@", w_start, w_end)
            colon = text.rfind(":", w_start + 1, w_last_at) if w_last_at > w_start else -1
            if colon < 0:
                continue
            parts += (text[kept:w_start], REDACTED)
            kept = text.index("@", colon, w_end)
    parts.append(text[kept:])
    return "".join(parts)


def redact_source(text: str) -> str:
    """A model source fit to quote: userinfo, and any query or fragment (a pre-signed URL's
    signature, a token), replaced.

    Userinfo here is everything up to the last '@' before the query: from the first '//' when
    that comes before it, otherwise from the start — whatever whitespace, control characters or
    missing slashes precede it, so a value no parser would read as a URI still hides its password.
    """
    cut = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=-1)
    head, tail = (text, "") if cut < 0 else (text[:cut], "?" + REDACTED)
    at = head.rfind("@")
    if at >= 0:
        slashes = head.find("//")
        start = slashes + 2 if 0 <= slashes < at else 0
        head = head[:start] + REDACTED + head[at:]
    return head + tail
