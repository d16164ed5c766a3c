"""Per-revision metric windows: Knative's ``collection`` (reference knative-kpa.md §6.3), pure.

Each revision keeps a stable and a panic window of its decider's metric (concurrency or RPS),
fed with revision-wide totals once per second (``record``), and read by the decider's
observation (``observe``). As in Knative the recorded concurrency is
``average_concurrent_requests − average_proxied_concurrent_requests`` (requests that came
through an activator are counted where they were proxied, once) and likewise for RPS.

Time: float Unix seconds (see ``reconciler/kpa/aggregation.py``); nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.kpa.aggregation import TimedBuckets, make_window
from reconciler.kpa.decider import Observation
from translator.autoscaling.kpa import KpaSettings


@dataclass(frozen=True, slots=True)
class StatTotals:
    """Revision-wide totals of one collection (Knative's extrapolated ``Stat``)."""

    concurrency: float = 0.0
    proxied_concurrency: float = 0.0
    rps: float = 0.0
    proxied_rps: float = 0.0


class RevisionWindows:
    """The stable and panic windows of one revision, for the metric its decider reads.

    Knative keeps windows for both concurrency and RPS but each decider reads only one (a
    revision's metric never changes: annotations are immutable per revision). knscale keeps
    the one that is read — half the work per second — and starts afresh if the metric changes.
    """

    __slots__ = ("algorithm", "metric", "panic", "stable")

    def __init__(
        self,
        stable_window: float,
        panic_window: float,
        algorithm: str = "linear",
        metric: str = "concurrency",
    ) -> None:
        self.algorithm = algorithm
        self.metric = metric
        self.stable: TimedBuckets = make_window(algorithm, stable_window)
        self.panic: TimedBuckets = make_window(algorithm, panic_window)

    @classmethod
    def for_settings(cls, settings: KpaSettings) -> RevisionWindows:
        return cls(settings.stable_window, settings.panic_window, settings.aggregation, settings.metric)

    def matches(self, settings: KpaSettings) -> bool:
        return (
            self.metric == settings.metric
            and self.algorithm == settings.aggregation
            and self.stable.window == settings.stable_window
            and self.panic.window == settings.panic_window
        )

    def resize(self, stable_window: float, panic_window: float, now: float) -> None:
        """Window lengths changed (annotation or ConfigMap): keep the newest buckets that fit."""
        self.stable.resize(stable_window, now)
        self.panic.resize(panic_window, now)

    def record(self, now: float, stat: StatTotals) -> None:
        if self.metric == "rps":
            value = stat.rps - stat.proxied_rps
        else:
            value = stat.concurrency - stat.proxied_concurrency
        self.stable.record(now, value)
        self.panic.record(now, value)

    def stable_and_panic(self, now: float, *, scrape_target: bool = True) -> tuple[float, float] | None:
        """Window averages for the decider, or None when the stable window has no data (ErrNoData).

        ``scrape_target=False`` mirrors Knative with TBC −1 (activator-only revisions): an empty
        window then reads as 0/0 instead of "no data".
        """
        if scrape_target and self.stable.is_empty(now):
            return None
        return self.stable.window_average(now), self.panic.window_average(now)


def observe(
    windows: RevisionWindows | None,
    settings: KpaSettings,
    ready_pods: int | None,
    reachable: bool,
    now: float,
    *,
    latest_missing: str | None = None,
    scrape_target: bool = True,
) -> Observation:
    """The decider's ``Observation`` for one revision at ``now``.

    ``latest_missing`` is knscale's stricter reading of "no data": when the most recent
    collection failed (timeouts, garbage payloads, too few pods answered), pass its reason and
    the observation carries no metrics, so the decider returns an invalid decision and the
    current scale is held and reported. Pass None to get Knative's behaviour, which keeps
    deciding on the older seconds still in the window.
    """
    if windows is None:
        return Observation(None, None, ready_pods, reachable, "metrics are not being collected")
    if latest_missing is not None:
        return Observation(None, None, ready_pods, reachable, f"metrics missing: {latest_missing}")
    if windows.metric != settings.metric:
        return Observation(None, None, ready_pods, reachable, f"no {settings.metric} data collected yet")
    values = windows.stable_and_panic(now, scrape_target=scrape_target)
    if values is None:
        return Observation(
            None,
            None,
            ready_pods,
            reachable,
            f"no {settings.metric} data in the last {settings.stable_window:g}s",
        )
    return Observation(values[0], values[1], ready_pods, reachable)
