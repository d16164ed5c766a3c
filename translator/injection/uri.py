"""A model source URI read once, the way the downloader reads it.

The default downloader is KServe's storage initializer (`kserve-storage`): for `s3://` it takes
`urlparse(uri).netloc` as the bucket, for `gs://` the text up to the first `/`, for `hf://` the
first `/`-separated component as the org, and for `http(s)://` it hands the URI to `requests`
(urllib3's `parse_url`). All of these end the authority at the first `/`, `?` or `#` and take
the userinfo up to the last `@` in it: `split_uri` is that split (RFC 3986 §3, what
`urllib.parse.urlsplit` does; the translator may not import urllib), and every check — the
allowlist, traversal, credentials — works on its parts, never on the raw string.

The host must be a plain name after percent-decoding: a DNS name or an IP literal for http(s),
a bucket or org name otherwise. No downloader percent-decodes a host, so a `%` there means the
allowlist would see a different host than the one fetched: it is refused, as is any other byte
a host cannot hold (`*.example.org` matched `evil.com%2f.example.org` and `evil.com:x.example.org`
as raw text).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_DNS_NAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)
# S3 (legacy names included: the seed's `autotables_47`), GCS buckets and Hugging Face orgs.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}\Z")
_NUMERIC_LABEL = re.compile(r"0[xX][0-9A-Fa-f]*|[0-9]+")
HTTP_SCHEMES = ("http", "https")
# Schemes whose location is a network host[:port] (an OCI registry is one), not a bucket or org name.
HOST_SCHEMES = (*HTTP_SCHEMES, "oci")


@dataclass(frozen=True, slots=True)
class SplitUri:
    scheme: str  # lower-case
    authority: str  # as written: [userinfo@]host[:port]
    path: str  # '' or starting with '/'
    query: str | None  # after '?', None when absent
    fragment: str | None  # after '#', None when absent


def split_uri(uri: str) -> SplitUri | None:
    """`scheme://authority/path?query#fragment`, split as urlsplit does; None without `://`."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return None
    rest, hash_sign, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    return SplitUri(
        scheme.lower(),
        authority,
        slash + path,
        query if question else None,
        fragment if hash_sign else None,
    )


def percent_decode(text: str) -> str:
    """%XX escapes decoded as UTF-8 (invalid sequences become U+FFFD, never a valid '.' or '/')."""
    if "%" not in text:
        return text
    raw = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), text)
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def has_dotdot(path: str) -> bool:
    """A `..` segment in the decoded path, with '\\' also a separator (some servers honour it)."""
    return ".." in percent_decode(path).replace("\\", "/").split("/")


@dataclass(frozen=True, slots=True)
class Host:
    name: str  # lower-case for http(s) hosts, as written for buckets, orgs and claims
    port: str | None


def parse_host(scheme: str, authority: str) -> Host | str:
    """The host (and port) of a userinfo-free authority, or why it is not a plain host."""
    if "%" in authority:
        decoded = percent_decode(authority)
        return f"the host is percent-encoded ({decoded!r} once decoded); write it plainly"
    if scheme not in HOST_SCHEMES:
        if _BUCKET.match(authority) is None:
            return f"{authority!r} is not a plain bucket or organisation name (letters, digits, . _ -)"
        return Host(authority, None)
    host, port = authority, None
    if authority.startswith("["):
        end = authority.find("]")
        host, tail = authority[: end + 1], authority[end + 1 :]
        if end < 0 or (tail and not tail.startswith(":")):
            return f"{authority!r} is not a host[:port]"
        port = tail[1:] if tail else None
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host!r} is not an IPv6 address"
    else:
        host, colon, port_text = authority.partition(":")
        port = port_text if colon else None
        if _DNS_NAME.match(host) is None:
            return f"{host!r} is not a DNS name or an IP address"
        if _NUMERIC_LABEL.fullmatch(host.rpartition(".")[2]):
            # A host ending in a number is an IPv4 address to the resolver (inet_aton reads
            # `0x7f.1` and `127.1` as 127.0.0.1): only the canonical dotted quad is accepted.
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                return f"{host!r} is not an IPv4 address in dotted-quad form"
    if port is not None and not (port.isascii() and port.isdigit() and 0 < int(port[:6]) < 65536):
        return f"the port {port!r} is not a number between 1 and 65535"
    return Host(host.lower(), port)


def _glob(pattern: str, flags: int) -> re.Pattern[str]:
    # '*' and '?' stay within the host: they never match ':' or '/'.
    body = "".join("[^:/]*" if c == "*" else "[^:/]" if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, flags)


def _split_port(glob: str) -> tuple[str, str | None]:
    """`name[:port]` of a pattern; `[v6]:port` keeps its brackets."""
    name, colon, port = glob.rpartition(":")
    if colon and (port == "*" or port.isdigit()) and (not name.startswith("[") or name.endswith("]")):
        return name, port
    return glob, None


def host_allowed(scheme: str, host: Host, patterns: tuple[str, ...]) -> bool:
    """`patterns` are `glob` or `scheme://glob`, `glob` being `name[:port]`: a pattern without a
    port admits only sources without one, `:*` any port. http(s) hosts compare case-insensitively."""
    flags = re.IGNORECASE if scheme in HOST_SCHEMES else 0
    for pattern in patterns:
        p_scheme, sep, body = pattern.partition("://")
        if not sep:
            body = pattern
        elif p_scheme.lower() != scheme:
            continue
        name_glob, port = _split_port(body)
        if _glob(name_glob, flags).fullmatch(host.name) is not None and port in ("*", host.port):
            return True
    return False
