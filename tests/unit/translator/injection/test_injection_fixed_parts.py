"""The per-configuration memo of the injection plans is explicit and bounded."""

from __future__ import annotations

import pytest

from translator.config.knscale import InjectionConfig
from translator.injection.fixed import FixedPartsCache, compute_fixed_parts


def test_one_configuration_is_worked_out_once() -> None:
    cache = FixedPartsCache()
    cfg = InjectionConfig()
    assert cache.get(cfg) is cache.get(cfg)
    assert cache.get(cfg) == compute_fixed_parts(cfg)
    assert len(cache) == 1


def test_equal_but_distinct_configurations_get_their_own_entry() -> None:
    # Keyed by identity: a reloaded configuration is a new object, even when equal.
    cache = FixedPartsCache()
    a, b = InjectionConfig(), InjectionConfig()
    cache.get(a)
    cache.get(b)
    assert len(cache) == 2


def test_the_cache_is_bounded_and_drops_the_oldest() -> None:
    cache = FixedPartsCache(size=2)
    first, second, third = (InjectionConfig(skip_containers=(f"c{i}",)) for i in range(3))
    cached_first = cache.get(first)
    cache.get(second)
    cache.get(third)
    assert len(cache) == 2
    again = cache.get(first)  # recomputed: equal, not the same object
    assert again == cached_first and again is not cached_first
    assert "c0" in again.skipped and {"queue-proxy", "istio-proxy"} <= again.skipped


def test_a_cache_needs_room() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FixedPartsCache(size=0)
