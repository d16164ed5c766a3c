"""knscale's model-cache step, run in the downloader image: python3 -c SOURCE URI ROOT KEY [WAIT].

ROOT is the cache volume, KEY the entry (cache_key(URI)). Under an exclusive flock on
ROOT/KEY.lock: a complete entry (marker ROOT/KEY.complete) is reused; otherwise leftovers are
removed, kserve_storage downloads into ROOT/KEY.partial-POD, files are fsynced, the directory
is renamed to ROOT/KEY, and the marker is written last. A crash leaves no marker: the next
start cleans up and downloads again. See docs/annotations.md, "Shared model cache".
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import importlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

MARKER = ".complete"
LOCK = ".lock"
PARTIAL = ".partial-"
DEFAULT_WAIT_SECONDS = 3600
_DIGEST = re.compile(r"@sha256:([0-9a-f]{64})\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")


def cache_key(uri: str) -> str:
    """The entry name: the content digest a URI pins (`…@sha256:HEX`), else a digest of the URI
    text (the content's digest is not known before the download)."""
    pinned = _DIGEST.search(uri)
    if pinned is not None:
        return "sha256-" + pinned.group(1)
    return "uri-sha256-" + hashlib.sha256(uri.encode("utf-8")).hexdigest()


def shown(uri: str) -> str:
    """The URI as logs may show it: no query (a pre-signed URL's signature), no userinfo."""
    scheme, sep, rest = uri.partition("://")
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    authority, slash, path = rest.partition("/")
    return scheme + sep + authority.rpartition("@")[2] + slash + path


def log(message: str) -> None:
    print(f"knscale-model-cache: {message}", file=sys.stderr, flush=True)


def is_complete(entry: Path) -> bool:
    return marker(entry).is_file() and entry.is_dir()


def marker(entry: Path) -> Path:
    return entry.with_name(entry.name + MARKER)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(top: Path) -> None:
    for parent, _, files in os.walk(top):
        for name in files:
            fsync_path(Path(parent, name))
        fsync_path(Path(parent))


def remove_leftovers(root: Path, key: str) -> None:
    """Partial downloads of KEY (a crashed or killed pod's), and an entry or a marker alone."""
    for path in root.iterdir():
        if path.name in (key, key + MARKER) or path.name.startswith((key + PARTIAL, key + MARKER + ".tmp-")):
            log(f"removing {path.name}, left by an incomplete download")
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def acquire(lock_path: Path, wait_seconds: float) -> int:
    """An exclusive flock on lock_path, waiting at most wait_seconds. The kernel (or the NFS
    server, when the client's lease ends) releases it when its holder dies, so a lock is never
    stale by itself; the file is never removed."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    holder = ""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if not holder:
                holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "another pod"
                log(f"waiting for the download by {holder}")
            if time.monotonic() >= deadline:
                os.close(fd)
                raise TimeoutError(
                    f"{lock_path} still locked by {holder} after {wait_seconds:.0f} s; "
                    "exiting so the kubelet retries (the holder's download is left alone)"
                ) from None
            time.sleep(0.2)


def write_marker(entry: Path, uri: str, me: str) -> None:
    tmp = entry.with_name(f"{entry.name}{MARKER}.tmp-{me}")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(f"{shown(uri)}\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.rename(marker(entry))


def fill(uri: str, entry: Path, me: str) -> None:
    partial = entry.with_name(entry.name + PARTIAL + me)
    partial.mkdir()
    try:
        storage = importlib.import_module("kserve_storage").Storage
        storage.download(uri, out_dir=str(partial))
        fsync_tree(partial)
        partial.rename(entry)
        fsync_path(entry.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    write_marker(entry, uri, me)
    fsync_path(entry.parent)


def run(uri: str, root: Path, key: str, wait_seconds: float) -> int:
    entry = root / key
    if is_complete(entry):  # the marker is written last: its presence means a complete entry
        os.utime(marker(entry))  # last use, for eviction by age
        log(f"hit {key} for {shown(uri)}")
        return 0
    me = _UNSAFE.sub("-", os.environ.get("HOSTNAME") or os.uname().nodename)[:63] + f"-{os.getpid()}"
    fd = acquire(root / (key + LOCK), wait_seconds)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{me} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode(), 0)
        if is_complete(entry):
            os.utime(marker(entry))
            log(f"hit {key} for {shown(uri)} (downloaded by another pod meanwhile)")
            return 0
        remove_leftovers(root, key)
        log(f"miss {key}: downloading {shown(uri)}")
        fill(uri, entry, me)
        log(f"stored {key}")
        return 0
    finally:
        os.close(fd)  # releases the flock


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        log("usage: URI CACHE-ROOT KEY [WAIT-SECONDS]")
        return 2
    uri, root, key = argv[:3]
    if key != cache_key(uri):
        log(f"key {key!r} is not the cache key of {shown(uri)} ({cache_key(uri)})")
        return 2
    try:
        return run(uri, Path(root), key, float(argv[3]) if len(argv) == 4 else DEFAULT_WAIT_SECONDS)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            log(
                f"the cache volume {root} is full while storing {shown(uri)}: the partial copy was removed "
                "and no marker written; evict old entries or grow the PersistentVolumeClaim"
            )
            return 28
        log(f"{type(e).__name__}: {str(e).replace(uri, shown(uri))}")
        return 1
    except Exception as e:  # kserve_storage raises plain exceptions (RuntimeError, ValueError …)
        log(f"download of {shown(uri)} failed: {type(e).__name__}: {str(e).replace(uri, shown(uri))}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
