"""The CA-rotation grace (webhook.carotation.grace_for) covers the slowest replica.

After a step is written, a replica re-reads the Secret at its next check (its periodic job sleeps
one check interval, then runs for `run` seconds), and its file poller loads the new leaf at its next
poll tick. The next step may be taken as soon as `grace` has passed, so every replica must serve
what the step wrote by then. Found by tests/e2e/test_ca_rotation.py's timing review: two check
intervals alone (the old grace) miss the poll interval.
"""

from __future__ import annotations

import itertools
import math

import pytest

from webhook.carotation import grace_for


def latest_load(check: float, poll: float, run: float, check_phase: float, poll_phase: float) -> float:
    """When the slowest replica serves a step written at t=0: its first Secret read after 0
    (reads every check + run seconds, offset by check_phase of that period), then the first poll
    tick after that read (ticks every poll seconds, offset by poll_phase of a poll)."""
    period = check + run
    read = check_phase * period or period  # a read exactly at 0 may have missed the write
    tick = poll_phase * poll
    return tick + math.ceil((read - tick) / poll) * poll if read > tick else tick


@pytest.mark.parametrize(("check", "poll"), [(300.0, 2.0), (3.0, 0.5), (1.0, 2.0), (2.0, 2.0), (5.0, 4.9)])
def test_every_replica_serves_the_step_before_the_grace_ends(check: float, poll: float) -> None:
    grace = grace_for(check, poll).total_seconds()
    fractions = [i / 20 for i in range(21)]
    for run_fraction, cp, pp in itertools.product([0.0, 0.5, 0.99], fractions, fractions):
        loaded = latest_load(check, poll, run_fraction * check, cp, pp)
        assert loaded <= grace + 1e-9, (check, poll, run_fraction, cp, pp, loaded, grace)


def test_two_check_intervals_alone_were_not_enough() -> None:
    """The old grace (2 × check interval) with `--cert-check-interval 1` and the default 2 s poll:
    a replica could still serve the old CA's leaf when the old CA left the caBundle."""
    check, poll = 1.0, 2.0
    worst = max(latest_load(check, poll, 0.5, cp / 10, pp / 10) for cp in range(11) for pp in range(11))
    assert worst > 2 * check
    assert worst <= grace_for(check, poll).total_seconds()
