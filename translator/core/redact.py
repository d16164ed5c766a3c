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
# An '@' followed by `algorithm:hex` is an image digest (`oci://reg/repo:v1@sha256:…`), never a host:
# no userinfo ends there.
_DIGEST = r"(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})(?![0-9A-Za-z])"
_NOT_DIGEST = rf"@(?!{_DIGEST})"
_USERINFO = re.compile(
    rf"(?<=//)[^/?#]*{_NOT_DIGEST}|^[^/?#]*{_NOT_DIGEST}|[^\s/?#'\"]+:[^\s/?#'\"@]*{_NOT_DIGEST}"
)
_TRAILING_DIGEST = re.compile(rf"@{_DIGEST}\Z")


def redact_text(text: str) -> str:
    """`text` with any userinfo (`user:password@`) replaced; the rest as written."""
    if "@" not in text:  # the usual case: nothing to do
        return text
    return _USERINFO.sub(REDACTED + "@", text)


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
