"""Cold-start measurement, the policy registry and the stored-state codec (all pure)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.kpa import registry, statecodec
from reconciler.kpa.coldstart import KEEP, ColdStarts, PodStart, observe
from reconciler.kpa.policy import DEFAULT_POLICY, KpaPolicy
from reconciler.kpa.predictive import NBINS, Fit, PredictivePolicy, PredictiveState
from translator.annotations.table import SCALING_POLICIES, SCALING_POLICY
from translator.autoscaling.kpa import KpaSettings

SETTINGS = KpaSettings()


def test_registry_names_are_the_annotations_choices() -> None:
    assert tuple(registry.POLICIES) == SCALING_POLICIES == SCALING_POLICY.choices == registry.NAMES
    assert registry.POLICIES["kpa"] is DEFAULT_POLICY
    knscale = registry.POLICIES["knscale"]
    assert isinstance(knscale, PredictivePolicy) and knscale.name == "knscale"


def test_median_of_recent_starts_and_downloads() -> None:
    starts = [PodStart(f"p{i}", 100.0 + i, 130.0 + i + i % 3, 20.0 + i if i % 2 else None) for i in range(5)]
    stats, fresh = observe(ColdStarts(), starts)
    assert len(fresh) == 5 and stats.samples == 5
    assert stats.cold_start == sorted(s.seconds for s in starts)[2]
    assert stats.download == 22.0  # pods 1 and 3 ran the downloader: (21 + 23) / 2
    again, fresh_again = observe(stats, starts)  # the same pods next refresh: nothing new
    assert again == stats and fresh_again == []


def test_a_cached_model_shows_the_container_start_alone() -> None:
    cold = PodStart("a", 0.0, 95.0, 90.0)  # 90 s download + 5 s container start
    cached = [PodStart(f"c{i}", 200.0 + i, 205.0 + i, None) for i in range(3)]
    stats, _ = observe(ColdStarts(), [cold, *cached])
    assert stats.cold_start == 5.0 and stats.download == 90.0


def test_the_window_is_bounded() -> None:
    stats = ColdStarts()
    for i in range(100):
        stats, _ = observe(stats, [PodStart(f"p{i}", float(i), float(i) + 10.0)])
    assert stats.samples == KEEP and stats.recent[0].pod == f"p{100 - KEEP}"


def test_switching_policies_keeps_the_reactive_state() -> None:
    kpa_state = DEFAULT_POLICY.initial_state(SETTINGS, 1, 1, 0.0)
    pred = registry.carry_over(kpa_state, registry.POLICIES["knscale"])
    assert isinstance(pred, PredictiveState) and pred.kpa == kpa_state
    assert registry.carry_over(pred, KpaPolicy()) == kpa_state
    assert registry.carry_over(object(), KpaPolicy()) is None


def _learned() -> PredictiveState:
    base = registry.POLICIES["knscale"].initial_state(SETTINGS, 1, 1, 0.0)
    counts = [0.0] * NBINS
    sums = [0.0] * NBINS
    counts[12], sums[12] = 5.5, 160.25
    counts[39], sums[39] = 1.0, 200000.0
    return replace(
        base,
        counts=tuple(counts),
        sums=tuple(sums),
        samples=7,
        rises=(60.0, 61.5, 59.0),
        last_rise=1_700_000_000.5,
        fit=Fit(34.7, math.inf, math.inf, 4),
        cold_start=12.0,
    )


def test_state_round_trips_and_is_small() -> None:
    state = _learned()
    text = statecodec.encode(state)
    assert len(text) < 300, text
    fresh = registry.POLICIES["knscale"].initial_state(SETTINGS, 1, 1, 5.0)
    back = statecodec.decode(text, fresh)
    assert back is not None
    assert back.kpa == fresh.kpa  # the reactive part is the new leader's own
    assert statecodec.encode(back) == text
    assert (back.counts, back.sums, back.rises, back.fit, back.cold_start) == (
        state.counts,
        state.sums,
        state.rises,
        state.fit,
        state.cold_start,
    )


def test_worst_case_size_is_bounded() -> None:
    state = replace(
        _learned(),
        counts=tuple(255.123456789 + i for i in range(NBINS)),
        sums=tuple(123456.789012345 + i for i in range(NBINS)),
        rises=tuple(86400.123456789 + i for i in range(6)),
        fit=Fit(1234.56789012, 2345.678901234, 3456.78901234, 123456),
    )
    assert len(statecodec.encode(state)) < statecodec.MAX_BYTES


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"v": 2}',
        '{"v": 1, "h": [[40, 1, 1]]}',
        '{"v": 1, "h": [[0, -1, 1]]}',
        '{"v": 1, "h": [[0, 1e300, 1]]}',
        '{"v": 1, "n": true}',
        '{"v": 1, "r": [1, 2, 3, 4, 5, 6, 7]}',
        '{"v": 1, "S": NaN}',
        '{"v": 1, "f": [1, 2]}',
        json.dumps({"v": 1, "pad": "x" * 5000}),
    ],
)
def test_malformed_or_hostile_text_is_ignored(text: str) -> None:
    fresh = registry.POLICIES["knscale"].initial_state(SETTINGS, 1, 1, 0.0)
    assert statecodec.decode(text, fresh) is None


@given(st.text(max_size=200))
def test_decode_never_raises(text: str) -> None:
    fresh = registry.POLICIES["knscale"].initial_state(SETTINGS, 1, 1, 0.0)
    statecodec.decode(text, fresh)
