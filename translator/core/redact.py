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
# An '@' followed by `algorithm:hex` is an image digest (`oci://reg/repo:v1@sha256:…`), never a host:
# no userinfo ends there (in the expression: each '@' above is `@(?!digest)`).
_DIGEST = r"(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})(?![0-9A-Za-z])"
_DIGEST_AT = re.compile(_DIGEST)
_TRAILING_DIGEST = re.compile(rf"@{_DIGEST}\Z")
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
        last_at = _last_userinfo_end(text, start, end)
        if last_at < 0:
            continue
        if start == 0 or text[start - 2 : start] == "//":
            parts += (text[kept:start], REDACTED)
            kept = last_at
            continue
        for word in _WORD.finditer(text, start, end):
            at = _colon_userinfo_end(text, *word.span())
            if at >= 0:
                parts += (text[kept : word.start()], REDACTED)
                kept = at
    parts.append(text[kept:])
    return "".join(parts)


def _ends_userinfo(text: str, at: int) -> bool:
    return _DIGEST_AT.match(text, at + 1) is None


def _last_userinfo_end(text: str, start: int, end: int) -> int:
    """The last '@' in text[start:end] that is not an image digest's, or -1."""
    at = text.rfind("@", start, end)
    while at >= 0 and not _ends_userinfo(text, at):
        at = text.rfind("@", start, at)
    return at


def _colon_userinfo_end(text: str, start: int, end: int) -> int:
    """The third form in the word text[start:end]: the '@' ending `X+:Y*@` (Y without '@') for
    the rightmost ':' after the word's first character whose next '@' ends a userinfo; or -1."""
    if text.find(":", start + 1, end) < 0 or text.find("@", start, end) < 0:
        return -1
    next_at = -1
    for i in range(end - 1, start, -1):
        char = text[i]
        if char == "@":
            next_at = i
        elif char == ":" and next_at >= 0 and _ends_userinfo(text, next_at):
            return next_at
    return -1


def redact_source(text: str) -> str:
    """A model source fit to quote: userinfo, and any query or fragment (a pre-signed URL's
    signature, a token), replaced.

    Userinfo here is everything up to the last '@' before the query: from the first '//' when
    that comes before it, otherwise from the start — whatever whitespace, control characters or
    missing slashes precede it, so a value no parser would read as a URI still hides its password.
    """
    cut = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=-1)
    head, tail = (text, "") if cut < 0 else (text[:cut], "?" + REDACTED)
    digest = _TRAILING_DIGEST.search(head)
    if digest is not None:  # an image digest, kept: only an '@' before it can end a userinfo
        head, tail = head[: digest.start()], head[digest.start() :] + tail
    at = head.rfind("@")
    if at >= 0:
        slashes = head.find("//")
        start = slashes + 2 if 0 <= slashes < at else 0
        head = head[:start] + REDACTED + head[at:]
    return head + tail
