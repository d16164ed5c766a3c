"""Assemble an OCI image layout from a Debian root filesystem tarball and an application tree.

    python image/oci.py --base ROOTFS.tar --app DIR --out LAYOUT --epoch SECONDS --ref 0.1.0

Two layers: the Debian rootfs (mmdebstrap's tarball, repacked) and the application tree (the
knscale wheel and its locked dependencies). Every entry is sorted, owned by root and dated
SOURCE_DATE_EPOCH, and gzip carries no name or time, so the same inputs give the same digest.
No registry and no container engine are involved: the layout is plain files (image-spec v1.1).
Prints the manifest digest; writes it to LAYOUT/../DIGEST too.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX = "application/vnd.oci.image.index.v1+json"

# Left out of the base layer: device nodes (the runtime provides /dev) and what apt and dpkg
# keep only for later installs (the image never runs apt).
DROP_PREFIXES = ("./dev/", "./var/cache/apt/", "./var/lib/apt/lists/", "./var/log/", "./run/")
UID = 65532


class _HashingWriter(io.RawIOBase):
    def __init__(self, sink: BinaryIO) -> None:
        self.sink, self.sha, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += len(view)
        self.sink.write(view)
        return len(view)


class _Layer:
    """A gzip'd tar written to a temporary blob; tracks diff_id (tar) and digest (gzip)."""

    def __init__(self, blobs: Path) -> None:
        self.blobs = blobs
        self.tmp = blobs / "layer.tmp"
        self.raw = self.tmp.open("wb")
        self.gz_hash = _HashingWriter(self.raw)
        self.gz = gzip.GzipFile(filename="", mode="wb", fileobj=self.gz_hash, mtime=0, compresslevel=6)
        self.tar_hash = _HashingWriter(self.gz)  # type: ignore[arg-type]
        self.tar = tarfile.TarFile(fileobj=self.tar_hash, mode="w", format=tarfile.PAX_FORMAT)

    def close(self) -> dict[str, Any]:
        self.tar.close()
        self.gz.close()
        self.raw.close()
        digest = self.gz_hash.sha.hexdigest()
        self.tmp.rename(self.blobs / digest)
        return {
            "descriptor": {"mediaType": LAYER, "digest": f"sha256:{digest}", "size": self.gz_hash.size},
            "diff_id": f"sha256:{self.tar_hash.sha.hexdigest()}",
        }


def _normalise(info: tarfile.TarInfo, epoch: int) -> tarfile.TarInfo:
    info.mtime = min(int(info.mtime), epoch)
    info.uname = info.gname = ""
    info.pax_headers = {}
    return info


def base_layer(rootfs: Path, blobs: Path, epoch: int) -> dict[str, Any]:
    layer = _Layer(blobs)
    with tarfile.open(rootfs, "r:*") as src:
        members = sorted(src.getmembers(), key=lambda m: m.name)
        for member in members:
            name = member.name if member.name.startswith("./") else f"./{member.name}"
            if name.startswith(DROP_PREFIXES):  # the directories themselves ("./dev") stay
                continue
            info = _normalise(member, epoch)
            if info.isreg():
                layer.tar.addfile(info, src.extractfile(member))
            else:
                layer.tar.addfile(info)
    return layer.close()


def app_layer(tree: Path, blobs: Path, epoch: int) -> dict[str, Any]:
    layer = _Layer(blobs)
    paths = sorted(tree.rglob("*"), key=lambda p: p.relative_to(tree).as_posix())
    for path in paths:
        info = layer.tar.gettarinfo(str(path), arcname="./" + path.relative_to(tree).as_posix())
        info.uid = info.gid = 0
        info.mode = (info.mode & ~0o022) | (0o755 if path.is_dir() or info.mode & 0o111 else 0o644)
        info.mode &= ~(stat.S_IWGRP | stat.S_IWOTH)
        _normalise(info, epoch)
        if info.isreg():
            with path.open("rb") as fh:
                layer.tar.addfile(info, fh)
        else:
            layer.tar.addfile(info)
    return layer.close()


def _blob(blobs: Path, data: bytes, media_type: str) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def image_config(version: str, created: str, diff_ids: list[str]) -> dict[str, Any]:
    """The image config. The Dockerfile declares the same (tests/unit/test_image_recipe.py)."""
    return {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{UID}:{UID}",
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "HOME=/tmp",
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONUNBUFFERED=1",
            ],
            "Entrypoint": ["/usr/local/bin/knscale"],
            "Cmd": ["serve", "--in-cluster"],
            "WorkingDir": "/tmp",
            "ExposedPorts": {"8443/tcp": {}},
            "Labels": {
                "org.opencontainers.image.title": "knscale",
                "org.opencontainers.image.version": version,
                "org.opencontainers.image.licenses": "Apache-2.0",
                "org.opencontainers.image.base.name": "debian:bookworm (mmdebstrap)",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": created, "created_by": "mmdebstrap --variant=essential (image/build.sh)"},
            {
                "created": created,
                "created_by": "image/install-app.sh: knscale wheel + requirements/runtime.lock",
            },
        ],
    }


def build(base: Path, app: Path, out: Path, epoch: int, ref: str, version: str) -> str:
    if out.exists():
        shutil.rmtree(out)
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers = [base_layer(base, blobs, epoch), app_layer(app, blobs, epoch)]
    created = f"{datetime.datetime.fromtimestamp(epoch, datetime.UTC):%Y-%m-%dT%H:%M:%SZ}"
    config = image_config(version, created, [layer["diff_id"] for layer in layers])
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": _blob(blobs, _canonical(config), CONFIG),
        "layers": [layer["descriptor"] for layer in layers],
        "annotations": {"org.opencontainers.image.version": version},
    }
    descriptor = _blob(blobs, _canonical(manifest), MANIFEST)
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": ref}
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [descriptor]}
    (out / "index.json").write_bytes(_canonical(index))
    (out / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))
    digest: str = descriptor["digest"]
    (out.parent / "DIGEST").write_text(digest + "\n")
    return digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="rootfs tarball (mmdebstrap output)")
    parser.add_argument("--app", type=Path, required=True, help="directory tree of the application layer")
    parser.add_argument("--out", type=Path, required=True, help="OCI layout directory to (re)create")
    parser.add_argument("--epoch", type=int, default=int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    parser.add_argument("--ref", required=True, help="org.opencontainers.image.ref.name (the tag)")
    parser.add_argument("--version", required=True)
    args = parser.parse_args()
    print(build(args.base, args.app, args.out, args.epoch, args.ref, args.version))


if __name__ == "__main__":
    main()
