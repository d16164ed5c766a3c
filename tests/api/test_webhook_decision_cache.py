"""/mutate and /validate answer repeated reviews from the decision cache, byte for byte as if decided."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers.paths import ADMISSION_FIXTURES

from translator.config.knscale import InjectionConfig, KnscaleConfig
from webhook.app import create_app

FIXTURES = ADMISSION_FIXTURES
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


def _review(uid: str, kind: str, containers: bytes, annotations: bytes) -> bytes:
    """A raw CREATE review of a Pod or of a Deployment whose template carries `annotations`."""
    if kind == "Pod":
        group, obj = b"", b'{"metadata":{"generateName":"p-","annotations":%s},"spec":%s}'
    else:
        group = b"apps"
        obj = (
            b'{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"selector":'
            b'{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"},"annotations":%s},'
            b'"spec":%s}}}'
        )
    return (
        b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"%s",'
        b'"kind":{"group":"%s","version":"v1","kind":"%s"},"operation":"CREATE","namespace":"ns",'
        b'"object":%s}}' % (uid.encode(), group, kind.encode(), obj % (annotations, containers))
    )


OPT_IN = b'{"knscale.dev/inject-model":"true","knscale.dev/model-uri":"s3://b/m"}'


@pytest.mark.parametrize("order", [("abcde", "zzzzz"), ("zzzzz", "abcde")])
@pytest.mark.parametrize(("path", "kind"), [("/mutate", "Pod"), ("/validate", "Deployment")])
def test_a_configured_name_that_looks_like_a_token_volume_keeps_names_in_the_key(
    order: tuple[str, str], path: str, kind: str
) -> None:
    """`skip_containers` is compared with container names, which the token renaming would also
    rename: under such a configuration two pods that differ there are different pods (one is all
    sidecars and denied, the other allowed)."""
    config = KnscaleConfig(injection=InjectionConfig(skip_containers=("kube-api-access-abcde",)))
    cached = TestClient(create_app(config))
    uncached = TestClient(create_app(config, decision_cache=False))
    allowed = {}
    for i, suffix in enumerate(order):
        containers = b'{"containers":[{"name":"kube-api-access-%s","image":"a:1"}]}' % suffix.encode()
        body = _review(f"uid-{i}", kind, containers, OPT_IN)
        got = cached.post(path, content=body, headers=HEADERS)
        assert got.content == uncached.post(path, content=body, headers=HEADERS).content
        allowed[suffix] = json.loads(got.content)["response"]["allowed"]
    assert allowed == {"abcde": False, "zzzzz": True}


def test_a_token_volume_name_spelled_with_escapes_elsewhere_is_not_normalised() -> None:
    """The annotation names the Secret `kube-api-access-abcde` with a \\u escape, which a byte
    search cannot see; the pre-declared downloader reads it or another Secret. Different pods."""
    cached = TestClient(create_app(KnscaleConfig()))
    uncached = TestClient(create_app(KnscaleConfig(), decision_cache=False))
    annotations = OPT_IN[:-1] + b',"knscale.dev/model-credentials-secret":"\\u006bube-api-access-abcde"}'
    patches = []
    for i, secret in enumerate(["kube-api-access-abcde", "kube-api-access-zzzzz"]):
        containers = (
            b'{"initContainers":[{"name":"knscale-model-init","envFrom":[{"secretRef":{"name":"%s"}}]}],'
            b'"containers":[{"name":"app","image":"a:1"}]}' % secret.encode()
        )
        body = _review(f"uid-{i}", "Pod", containers, annotations)
        got = _raw(cached, body)
        assert got == _raw(uncached, body)
        patches.append(json.loads(base64.b64decode(json.loads(got)["response"]["patch"])))
    envfrom = {"secretRef": {"name": "kube-api-access-abcde"}}
    assert [any(op.get("value") == envfrom for op in p) for p in patches] == [False, True]
