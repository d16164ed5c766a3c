from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from knscale.settings import SettingsError
from knscale.settings.files import load_config
from translator.config.knscale import InjectionConfig, KnscaleConfig


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


def test_cross_field_checks_are_reported_with_the_field_errors_in_one_round(tmp_path: Path) -> None:
    """pydantic skips a section's model validator when one of its fields fails; knscale runs it on
    the valid fields so the user sees every problem at once."""
    f = tmp_path / "c.yaml"
    f.write_text(
        "autoscaler:\n  min_scale: 5\n  max_scale: 3\n  stabel_window: 60\n  max_scale_up_rate: 0.5\n"
        "  max_scale_down_rate: nope\n"
        "injection:\n  default_scheme: ftp\n"
    )
    with pytest.raises(SettingsError) as exc:
        load_config(f)
    lines = str(exc.value).splitlines()
    assert any("injection.default_scheme" in line for line in lines)
    assert any("autoscaler.stabel_window: Extra inputs are not permitted" in line for line in lines)
    assert any("autoscaler.max_scale_down_rate" in line for line in lines)
    assert any("autoscaler: min-scale (5) must be less than max-scale (3)" in line for line in lines)
    assert any("autoscaler: max-scale-up-rate = 0.5, must be greater than 1.0" in line for line in lines)
    # A check about a failing field would judge its default: left out.
    assert not any("max-scale-down-rate =" in line for line in lines)
    assert len(lines) == 5, lines
