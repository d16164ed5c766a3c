"""The two ways to build the image agree: `make image` (image/build.sh, no Docker, no registry) and
the Dockerfile. Both read the one Debian package list, install the application layer with the one
script (image/install-app.sh) from the one lock, add the same user and declare the same config.
Fast and offline: the files are parsed, nothing is built (`make image-test` runs the image)."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

from helpers.paths import REPO

from knscale import __version__

ROOT = REPO
DOCKERFILE = (ROOT / "Dockerfile").read_text()
BUILD_SH = (ROOT / "image" / "build.sh").read_text()


def _oci() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_oci", ROOT / "image" / "oci.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_oci"] = module
    spec.loader.exec_module(module)
    return module


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs, continuation lines joined, comments dropped."""
    text = re.sub(
        r"\\\n", " ", "\n".join(line for line in DOCKERFILE.splitlines() if not line.startswith("#"))
    )
    return [
        (m[1].upper(), " ".join(m[2].split())) for m in re.finditer(r"^(\w+)\s+(.*)$", text, re.MULTILINE)
    ]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def test_one_pinned_debian_package_list_for_both_builds() -> None:
    lines = [
        line.split("#")[0].strip()
        for line in (ROOT / "image/debian-packages.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert lines and all(re.fullmatch(r"[a-z0-9.+-]+=[0-9][\w.+:~-]*", line) for line in lines), lines
    assert "python3.11" in {line.split("=")[0] for line in lines}
    # make image: mmdebstrap --include from the list, on bookworm.
    assert "sed -e 's/#.*//' -e '/^[[:space:]]*$/d' \"$ROOT/image/debian-packages.txt\"" in BUILD_SH
    assert '--include="$(IFS=,; echo "${PACKAGES[*]}")"' in BUILD_SH and "SUITE=bookworm" in BUILD_SH
    # Dockerfile: both stages on bookworm, installing exactly the list (the build stage adds only
    # python3.11-venv, whose version Debian ties to python3.11's).
    for stage in _stages():
        assert stage[0] == ("FROM", stage[0][1]) and stage[0][1].split()[0] == "debian:bookworm-slim"
        assert ("COPY", "image/debian-packages.txt /tmp/debian-packages.txt") in stage
        (run,) = [arg for ins, arg in stage if ins == "RUN" and "apt-get install" in arg]
        assert "/tmp/debian-packages.txt | xargs apt-get install -y --no-install-recommends" in run
        extra = run.split("--no-install-recommends", 1)[1].split("&&")[0].split()
        assert extra in ([], ["python3.11-venv"]), extra
    assert len(_stages()) == 2


def test_same_application_layer_and_user() -> None:
    assert '"${NICE[@]}" bash "$ROOT/image/install-app.sh" "$PY" "$APP" "$WHEEL"' in BUILD_SH
    (build, final) = _stages()
    runs = " ".join(arg for ins, arg in build if ins == "RUN")
    assert "bash image/install-app.sh /venv/bin/python /app /dist/knscale-*.whl" in runs
    assert "--require-hashes --no-deps -r requirements/build.lock" in runs
    assert ("COPY", "--from=build /app/ /") in final
    users = re.compile(r"nonroot:x:65532:[^\"']*")
    assert (
        set(users.findall(BUILD_SH)) == set(users.findall(DOCKERFILE))
        and len(set(users.findall(DOCKERFILE))) == 2
    )


def test_same_image_config() -> None:
    config = _oci().image_config(__version__, "1970-01-01T00:00:00Z", [])["config"]
    final = _stages()[1]
    (env,) = [arg for ins, arg in final if ins == "ENV"]
    assert shlex.split(env) == config["Env"]
    assert ("USER", config["User"]) in final
    assert ("WORKDIR", config["WorkingDir"]) in final
    assert ("EXPOSE", "8443") in final and config["ExposedPorts"] == {"8443/tcp": {}}
    (entrypoint,) = [arg for ins, arg in final if ins == "ENTRYPOINT"]
    (cmd,) = [arg for ins, arg in final if ins == "CMD"]
    assert (json.loads(entrypoint), json.loads(cmd)) == (config["Entrypoint"], config["Cmd"])


def test_build_lock_pins_what_dev_lock_pins() -> None:
    def blocks(path: Path) -> dict[str, set[str]]:
        text = path.read_text()
        found: dict[str, set[str]] = {}
        for match in re.finditer(
            r"^([a-z0-9-]+)==(\S+) \\\n((?:    --hash=\S+(?: \\)?\n)+)", text, re.MULTILINE
        ):
            found[f"{match[1]}=={match[2]}"] = set(re.findall(r"--hash=(\S+)", match[3]))
        return found

    build = blocks(ROOT / "requirements/build.lock")
    dev = blocks(ROOT / "requirements/dev.lock")
    assert {name.split("==")[0] for name in build} == {"packaging", "setuptools", "wheel"}
    assert all(dev[name] == hashes for name, hashes in build.items())
