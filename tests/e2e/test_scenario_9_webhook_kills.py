"""Scenario 9 (webhook): `knscale serve` SIGKILLed and restarted four times while a client keeps
creating pods through the API server — pods that ask for the seed's model, and plain pods.

`/mutate` is registered with failurePolicy Fail and CEL matchConditions on the inject keys
(webhook/registration.py): every model pod must either be stored fully injected or refused, never
stored half-injected or uninjected; every plain pod must be admitted, webhook up or down.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import ControlPlane, wait_until
from knscale_procs import Webhook, new_namespace
from manifests import SEED_ANNOTATIONS, assert_injected

from kubeapi.client import KubernetesApi
from kubeapi.errors import ApiError
from kubeapi.resources import PODS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

KILLS = 4


def _pod(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
    }


@pytest.fixture
def serving_webhook(webhook: Webhook) -> Iterator[Webhook]:
    """Whatever this test does to the shared webhook, later tests find it serving again."""
    yield webhook
    if webhook.component is None or not webhook.component.alive():
        webhook.start()


def test_webhook_killed_under_load_never_admits_a_half_injected_pod(
    control_plane: ControlPlane, serving_webhook: Webhook
) -> None:
    cp, hook = control_plane, serving_webhook
    ns = new_namespace(cp, "s9-hook")
    api = KubernetesApi.from_kubeconfig(str(cp.kubeconfig))
    outcomes: Counter[str] = Counter()
    refusals: list[str] = []
    unexpected: list[str] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            model = i % 2 == 0
            name = f"{'model' if model else 'plain'}-{i:04d}"
            try:
                api.create(PODS, ns, _pod(name, dict(SEED_ANNOTATIONS) if model else {}))
                outcomes["model admitted" if model else "plain admitted"] += 1
            except ApiError as exc:
                if model and 'failed calling webhook "inject-model.knscale.dev"' in exc.message:
                    outcomes["model refused"] += 1
                    refusals.append(exc.message)
                else:
                    unexpected.append(f"{name}: {exc}")
            i += 1

    worker = threading.Thread(target=load, name="pod-load", daemon=True)
    worker.start()
    try:
        for _ in range(KILLS):
            before = outcomes["model admitted"]
            wait_until(lambda b=before: outcomes["model admitted"] >= b + 3, timeout=60, what="admissions")
            hook.kill()
            refused = outcomes["model refused"]
            wait_until(lambda r=refused: outcomes["model refused"] >= r + 2, timeout=30, what="refusals")
            time.sleep(0.5)
            hook.start()  # same port, same CA: no re-registration
        before = outcomes["model admitted"]
        wait_until(lambda: outcomes["model admitted"] >= before + 3, timeout=60, what="admissions after")
    finally:
        stop.set()
        worker.join(timeout=60)

    assert not unexpected, unexpected[:5]
    pods = api.list(PODS, ns).items
    stored = Counter("model" if p["metadata"]["name"].startswith("model") else "plain" for p in pods)
    assert stored["model"] == outcomes["model admitted"] and stored["plain"] == outcomes["plain admitted"]
    for pod in pods:
        if pod["metadata"]["name"].startswith("model"):
            assert_injected(pod, ["app"])  # fully injected, or it would not be here
        else:
            assert not pod["spec"].get("initContainers"), pod["metadata"]["name"]
            assert "knscale.dev/model-injected" not in (pod["metadata"].get("annotations") or {})
    # The webhook was down KILLS times: model pods were refused then (failurePolicy Fail), plain
    # pods were admitted throughout (matchConditions keep them away from the webhook).
    assert outcomes["model refused"] >= 2 * KILLS and outcomes["plain admitted"] > outcomes["model admitted"]
    causes = Counter(r.rsplit(": ", 1)[-1][:60] for r in refusals)
    print(f"\nwebhook kills {KILLS}: {dict(outcomes)}; stored {dict(stored)}; refusal causes {dict(causes)}")
