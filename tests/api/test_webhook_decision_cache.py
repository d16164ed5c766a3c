"""/mutate and /validate answer repeated reviews from the decision cache, byte for byte as if decided."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from translator.config import KnscaleConfig
from webhook.app import create_app

FIXTURES = Path(__file__).parent.parent / "fixtures" / "admission"
HEADERS = {"Content-Type": "application/json"}


def with_uid(review: dict[str, Any], uid: str) -> dict[str, Any]:
    out = copy.deepcopy(review)
    out["request"]["uid"] = uid
    return out


def post(client: TestClient, review: dict[str, Any], path: str = "/mutate") -> bytes:
    r = client.post(path, content=json.dumps(review), headers=HEADERS)
    assert r.status_code == 200, r.text
    return r.content


def cache_counts(client: TestClient, endpoint: str) -> dict[str, float]:
    text = client.get("/metrics").text
    out = {}
    for result in ("hit", "miss"):
        line = f'knscale_webhook_decision_cache_total{{endpoint="{endpoint}",result="{result}"}} '
        out[result] = float(next(x for x in text.splitlines() if x.startswith(line)).split()[-1])
    return out


def test_a_second_pod_of_the_same_template_is_answered_from_the_cache() -> None:
    client = TestClient(create_app(KnscaleConfig()))
    seed = json.loads((FIXTURES / "pod-create-v1.json").read_text())
    first = json.loads(post(client, with_uid(seed, "11111111-aaaa")))
    second = json.loads(post(client, with_uid(seed, "22222222-bbbb")))
    assert cache_counts(client, "mutate") == {"hit": 1.0, "miss": 1.0}
    assert first["response"]["uid"] == "11111111-aaaa" and second["response"]["uid"] == "22222222-bbbb"
    second["response"]["uid"] = "11111111-aaaa"
    assert second == first
    assert "patch" in first["response"] and len(first["response"]["warnings"]) == 4
    # A different pod (another template) is decided afresh.
    other = with_uid(seed, "33333333-cccc")
    other["request"]["object"]["metadata"]["annotations"]["knscale.dev/model-mount-path"] = "/models"
    third = json.loads(post(client, other))
    assert cache_counts(client, "mutate") == {"hit": 1.0, "miss": 2.0}
    assert third["response"]["patch"] != first["response"]["patch"]
    # Each request is still counted under its outcome.
    assert (
        'knscale_webhook_requests_total{endpoint="mutate",outcome="patched"} 3.0'
        in client.get("/metrics").text
    )


def test_denials_are_cached_and_a_reloaded_configuration_decides_afresh() -> None:
    configs = [KnscaleConfig()]
    client = TestClient(create_app(lambda: configs[-1]))
    seed = json.loads((FIXTURES / "pod-create-v1.json").read_text())
    bad = with_uid(seed, "uid-1")
    bad["request"]["object"]["metadata"]["annotations"]["knscale.dev/model-mount-path"] = "/"
    one = json.loads(post(client, bad))
    two = json.loads(post(client, with_uid(bad, "uid-2")))
    assert one["response"]["allowed"] is False and "KNS0" in one["response"]["status"]["message"]
    assert two["response"]["status"] == one["response"]["status"] and two["response"]["uid"] == "uid-2"
    assert cache_counts(client, "mutate") == {"hit": 1.0, "miss": 1.0}
    # An allowlist that refuses the seed's downloader image: the cached "patched" must not be reused.
    good = with_uid(seed, "uid-3")
    assert "patch" in json.loads(post(client, good))["response"]
    configs.append(
        KnscaleConfig.model_validate({"injection": {"image_allowlist": ["registry.example.com/"]}})
    )
    refused = json.loads(post(client, with_uid(seed, "uid-4")))["response"]
    assert refused["allowed"] is False, refused
    assert cache_counts(client, "mutate")["hit"] == 1.0


def test_validate_replies_are_cached_too() -> None:
    client = TestClient(create_app(KnscaleConfig()))
    ksvc = json.loads((FIXTURES / "pod-create-v1.json").read_text())
    ksvc["request"]["kind"] = {"group": "apps", "version": "v1", "kind": "Deployment"}
    ksvc["request"]["object"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"autoscaling.knative.dev/minscale": "1"}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}},
    }
    first = json.loads(post(client, with_uid(ksvc, "v-1"), "/validate"))
    second = json.loads(post(client, with_uid(ksvc, "v-2"), "/validate"))
    assert first["response"]["warnings"] and second["response"]["warnings"] == first["response"]["warnings"]
    assert cache_counts(client, "validate") == {"hit": 1.0, "miss": 1.0}


def test_pods_differing_only_in_their_token_volume_name_share_a_decision() -> None:
    """The API server names `kube-api-access-xxxxx` per pod (e2e scenario 1 sees it for real)."""
    cached = TestClient(create_app(KnscaleConfig()))
    uncached = TestClient(create_app(KnscaleConfig(), decision_cache=False))
    seed = (FIXTURES / "pod-create-v1.json").read_text()
    assert seed.count("kube-api-access-7xk2p") == 3
    first = json.loads(seed.replace("kube-api-access-7xk2p", "kube-api-access-rzzgb"))
    second = with_uid(json.loads(seed.replace("kube-api-access-7xk2p", "kube-api-access-dcqrb")), "uid-2")
    post(cached, with_uid(first, "uid-1"))
    assert post(cached, second) == post(uncached, second)
    assert cache_counts(cached, "mutate") == {"hit": 1.0, "miss": 1.0}


def _raw(client: TestClient, body: bytes) -> bytes:
    r = client.post("/mutate", content=body, headers=HEADERS)
    assert r.status_code == 200, r.text
    return r.content


def test_a_token_volume_name_elsewhere_in_the_pod_is_not_normalised() -> None:
    """`kube-api-access-xxxxx` as an annotation value is data the reply may carry (here: the
    credentials Secret the downloader reads), so bodies that differ there are different pods."""
    cached = TestClient(create_app(KnscaleConfig()))
    uncached = TestClient(create_app(KnscaleConfig(), decision_cache=False))
    seed = json.loads((FIXTURES / "pod-create-v1.json").read_text())
    for i, secret in enumerate(["kube-api-access-abcde", "kube-api-access-zzzzz", "kube-api-access-7xk2p"]):
        review = with_uid(seed, f"uid-{i}")
        review["request"]["object"]["metadata"]["annotations"]["knscale.dev/model-credentials-secret"] = (
            secret
        )
        assert post(cached, review) == post(uncached, review)
    assert cache_counts(cached, "mutate")["hit"] == 0.0


def test_the_first_uid_field_must_be_the_request_uid_even_when_spelled_oddly() -> None:
    """The byte search finds the first `"uid"`; an escaped request.uid (or a duplicate key) could
    make it another field. The first hit of an entry parses the body once and refuses that."""
    cached = TestClient(create_app(KnscaleConfig()))
    uncached = TestClient(create_app(KnscaleConfig(), decision_cache=False))

    def body(meta_uid: str) -> bytes:
        return (
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{'
            b'"object":{"apiVersion":"v1","kind":"Pod","metadata":{"uid":"' + meta_uid.encode() + b'",'
            b'"annotations":{"knscale.dev/inject-model":"true","knscale.dev/model-uri":"s3://b/m"}},'
            b'"spec":{"containers":[{"name":"app","image":"a:1"}]}},'
            b'"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"ns",'
            b'"uid":"\\u0061bc"}}'
        )

    first = _raw(cached, body("abc"))  # request.uid is "abc", spelled escaped; metadata.uid comes first
    assert json.loads(first)["response"]["uid"] == "abc"
    second = body("xyz")
    assert _raw(cached, second) == _raw(uncached, second)
    assert json.loads(_raw(cached, second))["response"]["uid"] == "abc"
