"""Small, pure checks of names and paths: DNS-1123 names, image references, mount paths.

In `core` so that `translator.config` validates its defaults with the same functions the
admission path uses. (Quantities are parsed by `core.values.parse_quantity`, the one grammar.)
"""

from __future__ import annotations

import re

# RFC 1123 label: namespaces. RFC 1123 subdomain: Secret, PersistentVolumeClaim and most object names.
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")

# An OCI image reference as the kubelet accepts it: [registry[:port]/]path[:tag][@digest].
# Lower-case path components separated by '.', '_', '__' or '-'; no whitespace.
_IMAGE_REFERENCE = re.compile(
    r"^(?:(?P<registry>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::\d+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}))?\Z"
)

# Where a model mount would shadow what the container runtime or the kubelet provides: nothing may
# be mounted at or under the first; the second may not be replaced whole (`/etc/hosts` lives there).
RESERVED_MOUNT_TREES: tuple[str, ...] = ("/dev", "/proc", "/sys")
RESERVED_MOUNT_DIRS: tuple[str, ...] = ("/etc",)


def is_dns1123_label(value: str) -> bool:
    return _DNS1123_LABEL.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(_DNS1123_SUBDOMAIN.match(value))


def is_image_reference(value: str) -> bool:
    return len(value) <= 4096 and bool(_IMAGE_REFERENCE.match(value))


def has_dotdot_segment(value: str) -> bool:
    """True if any '/'-separated segment is exactly `..` (the traversal the kubelet would follow)."""
    return ".." in value.split("/")


_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


def has_control_or_space(value: str) -> bool:
    return _CONTROL_OR_SPACE.search(value) is not None


def mount_path_problem(path: str) -> str | None:
    """Why `path` cannot be a model mount path, or None if it can.

    The `..` check is separate (`has_dotdot_segment`) because it is its own rule.
    """
    if has_control_or_space(path):
        return "contains whitespace or control characters"
    if not path.startswith("/"):
        return "is not an absolute path"
    normal = normalize_path(path)
    if normal == "/":
        return "is the root directory '/'"
    for root in RESERVED_MOUNT_TREES:
        if normal == root or normal.startswith(root + "/"):
            return f"is the reserved system directory {root} or inside it"
    if normal in RESERVED_MOUNT_DIRS:
        return f"would hide the system directory {normal}"
    return None


def normalize_path(path: str) -> str:
    """Collapse repeated and trailing slashes and `.` segments (no `..` handling: those are refused)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)
