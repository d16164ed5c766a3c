"""Image references parsed as the container runtime reads them, and the image allowlist match.

A reference is `[registry-host[:port]/]repository-path[:tag][@digest]`. A missing registry is
filled in with Docker's normalisation (distribution/reference `splitDockerDomain`, what the
kubelet and containerd use):

* the first `/`-separated component is the registry only if it contains `.` or `:`, or is
  `localhost`; otherwise the whole name is a repository path on `docker.io`;
* `index.docker.io` is `docker.io`;
* a one-component path on `docker.io` is an official image: `nginx` → `docker.io/library/nginx`.

Allowlist patterns are read with the same rules and matched part by part, never as one string
(a `*` that matched `/` let `*.trusted.example/*` admit `evil.io/x.trusted.example/y`):

* the registry host is compared as a host: case-insensitively, `*` and `?` match within the host
  only (never `:` or `/`); a pattern without a port matches only images without one, `:*` any port;
* the repository path is matched segment by segment: a `*` never crosses a `/`;
* a tag or digest in the pattern must match the image's; a pattern without one allows any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

DOCKER_HUB = "docker.io"


@dataclass(frozen=True, slots=True)
class ImageRef:
    host: str  # lower-case registry host, without the port
    port: str | None  # the port text, or None
    path: str  # repository path, `/`-separated, never empty for a valid reference
    tag: str | None
    digest: str | None


def parse_image(reference: str) -> ImageRef:
    """Split a reference into registry host, port, path, tag and digest (Docker's rules above)."""
    name, at, digest = reference.partition("@")
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    first, sep, rest = name.partition("/")
    if sep and (("." in first or ":" in first) or first == "localhost" or first.lower() != first):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    host, colon_sep, port = registry.partition(":")
    host = host.lower()
    if host == "index.docker.io":
        host = DOCKER_HUB
    if host == DOCKER_HUB and not colon_sep and "/" not in path:
        path = "library/" + path
    return ImageRef(host, port if colon_sep else None, path, tag, digest if at else None)


def _glob(pattern: str, forbidden: str) -> str:
    """A glob as a regex: `*` and `?` never match a character in `forbidden`."""
    cls = "[^" + re.escape(forbidden) + "]"
    out = []
    for ch in pattern:
        out.append(cls + "*" if ch == "*" else cls if ch == "?" else re.escape(ch))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Pattern:
    host: re.Pattern[str]
    port: str | None  # None: the image must have no port; "*": any port
    path: re.Pattern[str]
    tag: re.Pattern[str] | None
    digest: str | None


@lru_cache(maxsize=256)  # patterns come from the configuration: a handful per process
def _compile(pattern: str) -> _Pattern:
    ref = parse_image(pattern)
    return _Pattern(
        host=re.compile(_glob(ref.host, ":/"), re.IGNORECASE),
        port=ref.port,
        path=re.compile(_glob(ref.path, "/")),
        tag=None if ref.tag is None else re.compile(_glob(ref.tag, "/@")),
        digest=ref.digest,
    )


def image_matches(reference: str, pattern: str) -> bool:
    """Whether the image `reference` is allowed by the allowlist `pattern` (rules above)."""
    ref = parse_image(reference)
    p = _compile(pattern)
    if p.host.fullmatch(ref.host) is None or p.path.fullmatch(ref.path) is None:
        return False
    if p.port != "*" and p.port != ref.port:
        return False
    if p.tag is not None and (ref.tag is None or p.tag.fullmatch(ref.tag) is None):
        return False
    return p.digest is None or p.digest == ref.digest
