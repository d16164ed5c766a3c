"""Memory of the webhook's memos does not grow with distinct inputs (issue 16, high).

The warning-text memo was keyed on whole messages that quote user values: a thousand
`kubectl apply --dry-run=server` calls with distinct 256 KiB annotation values kept a thousand
such messages alive and pushed a replica past its memory limit.
"""

from __future__ import annotations

import gc
import tracemalloc

from translator.core.findings import Finding, ObjectRef, Severity
from webhook.admission import WARNING_MAX_CHARS, _warning_text, warning_text


def _finding(i: int, size: int) -> Finding:
    value = f"{i:08d}" + "x" * size
    return Finding(
        rule_id="KNS101",
        severity=Severity.WARNING,
        obj=ObjectRef("Pod", "p", "ns"),
        path="metadata.annotations",
        key="autoscaling.knative.dev/target",
        value=value,
        message=f"autoscaling.knative.dev/target: {value!r} is not a number",
    )


def test_warning_memo_keeps_only_clipped_text_for_distinct_large_values() -> None:
    _warning_text.cache_clear()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        # Each request's findings die with the request; only what the memo keeps stays.
        texts = [warning_text(_finding(i, 64 * 1024)) for i in range(200)]
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(len(t) <= WARNING_MAX_CHARS for t in texts)
    assert _warning_text.cache_info().currsize == 200
    # 200 entries of clipped text: tens of KiB. Keyed on whole messages it was 200 × 64 KiB = 12.5 MiB.
    assert after - before < 1024 * 1024, after - before


def test_clipping_before_the_memo_changes_no_text() -> None:
    long_key = "knscale.dev/" + "k" * 300
    cases = [
        ("KNS101", "autoscaling.knative.dev/target", "autoscaling.knative.dev/target: 'x' is not a number"),
        ("KNS004", "modelBucket", "a legacy key, use knscale.dev/model-uri"),
        ("KNS101", long_key, f"{long_key} is unknown " + "y" * 500),
        ("KNS101", long_key, "short message without the key"),
        ("KNS101", None, "no key at all \x07 with a bell"),
    ]
    for rule, key, message in cases:
        f = Finding(rule, Severity.WARNING, ObjectRef("Pod", "p"), "metadata.annotations", key, None, message)
        head = rule if key and key in message else f"{rule} {key or ''}".rstrip()
        full = f"{head}: {message}"
        expected = full if len(full) <= WARNING_MAX_CHARS else full[: WARNING_MAX_CHARS - 3] + "..."
        assert warning_text(f) == expected.replace("\x07", "?")
