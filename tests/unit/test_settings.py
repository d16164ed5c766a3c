from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from knscale.settings import SettingsError, load_config
from translator.config import InjectionConfig, KnscaleConfig


def test_defaults_load_without_file() -> None:
    assert load_config() == KnscaleConfig()


def test_unknown_keys_are_all_reported_at_once(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("bogus: 1\ninjection:\n  nope: 2\n")
    with pytest.raises(SettingsError) as exc:
        load_config(f)
    text = str(exc.value)
    assert "bogus" in text and "injection.nope" in text and str(f) in text


def test_not_a_mapping_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="expected a mapping"):
        load_config(f)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    "given",
    [
        {"env": {"HTTP_PROXY\n": "x"}},
        {"model_size_limit": "1Gi\n"},
        {"default_image": "busybox\n"},
    ],
)
def test_a_trailing_newline_does_not_pass_the_injection_settings(given: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        InjectionConfig.model_validate(given)
