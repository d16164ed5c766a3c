from __future__ import annotations

import logging
from pathlib import Path

import pytest

from knscale.settings import SettingsError
from knscale.settings.watch import ConfigSource


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_reload_on_change_keeps_previous_on_invalid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "config.yaml"
    write(f, "injection:\n  default_scheme: s3\n")
    source = ConfigSource(f, {})
    assert source.current().injection.default_scheme == "s3"
    assert source.poll() is False  # unchanged content

    write(f, "injection:\n  default_scheme: gs\n")
    assert source.poll() is True
    assert source.current().injection.default_scheme == "gs"

    with caplog.at_level(logging.ERROR, logger="knscale.config"):
        write(f, "injection:\n  default_scheme: ftp\n  bogus: 1\n")
        assert source.poll() is False
    assert source.current().injection.default_scheme == "gs"  # the last good one stays
    assert "default_scheme" in caplog.text and "bogus" in caplog.text  # every problem, once
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="knscale.config"):
        assert source.poll() is False
    assert caplog.text == ""  # the same bad content is not reported again


def test_file_briefly_absent_is_not_a_change(tmp_path: Path) -> None:
    f = tmp_path / "config.yaml"
    write(f, "{}\n")
    source = ConfigSource(f, {})
    f.unlink()
    assert source.poll() is False
    write(f, "injection:\n  default_scheme: gs\n")
    assert source.poll() is True


def test_invalid_at_start_up_is_fatal(tmp_path: Path) -> None:
    f = tmp_path / "config.yaml"
    write(f, "nope: 1\n")
    with pytest.raises(SettingsError):
        ConfigSource(f, {})


def test_no_file_means_defaults_and_no_thread() -> None:
    source = ConfigSource(None, {})
    source.start()
    assert source.poll() is False
    source.stop()
