"""The current knscale configuration, re-read when its file changes.

In a cluster the settings file is the `knscale-config` ConfigMap mounted as a volume; the
kubelet updates such a volume in place (an atomic symlink swap), so polling the file's content
is the reliable signal (no inotify event reaches a process watching the old inode). A new
version that does not validate is logged with every problem and the previous configuration
stays in force: a typo in the ConfigMap never takes a running webhook or reconciler down.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from pathlib import Path

from knscale.settings import SettingsError
from knscale.settings.files import load_config
from translator.config.knscale import KnscaleConfig

log = logging.getLogger("knscale.config")


def _digest(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None  # briefly absent during the kubelet's swap: judged on the next poll


class ConfigSource:
    """Holds the validated configuration; `current()` is what the servers call per use."""

    def __init__(self, path: Path | None, environ: Mapping[str, str], *, interval: float = 5.0) -> None:
        self._path = path
        self._environ = dict(environ)
        self._interval = interval
        self._config = load_config(path, self._environ)  # start-up: invalid config is fatal
        self._digest = _digest(path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> KnscaleConfig:
        return self._config

    def poll(self) -> bool:
        """Re-read the file if its content changed; True when a new configuration took effect."""
        digest = _digest(self._path)
        if digest is None or digest == self._digest:
            return False
        self._digest = digest  # judged once per content, so a bad version is logged once
        try:
            config = load_config(self._path, self._environ)
        except SettingsError as exc:
            log.error("configuration %s changed but is invalid; the previous one stays:\n%s", self._path, exc)
            return False
        if config == self._config:
            return False
        self._config = config
        log.info("configuration %s reloaded", self._path)
        return True

    def start(self) -> None:
        if self._path is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="knscale-config-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 1)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()
