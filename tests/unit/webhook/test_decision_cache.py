"""The decision cache: exact keys, uid swapping, config identity, bounds."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from helpers.strategies import pods
from hypothesis import HealthCheck, given, settings

from translator.config.knscale import KnscaleConfig
from webhook.app import create_app
from webhook.decision_cache import DecisionCache

CACHED = TestClient(create_app(KnscaleConfig()))
UNCACHED = TestClient(create_app(KnscaleConfig(), decision_cache=False))
HEADERS = {"Content-Type": "application/json"}


def handler() -> None:  # stands for an endpoint's handler: only its identity matters
    pass


def other_handler() -> None:
    pass


def body(uid: str, name: str = "web-") -> bytes:
    return orjson.dumps(
        {"kind": "AdmissionReview", "request": {"uid": uid, "object": {"metadata": {"generateName": name}}}}
    )


def reply(uid: str, extra: str = "") -> bytes:
    return orjson.dumps({"response": {"uid": uid, "allowed": True, "warnings": [extra] if extra else []}})


def key(raw: bytes) -> tuple[bytes, bytes]:
    k = DecisionCache.key(raw)
    assert k is not None
    return k


def test_the_key_is_the_body_without_its_uid() -> None:
    one, two = key(body("u-1")), key(body("u-2"))
    assert one[0] == two[0] and one[1] == b'"u-1"' and two[1] == b'"u-2"'
    assert key(body("u-1", "other-")) != one
    assert key(b'{"request": {"uid" :\t"u-1", "x": 1}}') == (b'{"request": {"uid" :\t"", "x": 1}}', b'"u-1"')


@pytest.mark.parametrize(
    "raw",
    [
        b'{"request":{"uid":"\\u0041b"}}',  # escaped: the parsed uid is "Ab"
        b'{"request":{"uid":"a\\"b"}}',
        b'{"request":{"uid":"caf\xc3\xa9"}}',  # not ASCII
        b'{"request":{"uid":"a\tb"}}',  # a control character: not even valid JSON
        b'{"request":{"uid":""}}',
        b'{"request":{}}',
    ],
)
def test_a_uid_that_is_not_plain_gives_no_key(raw: bytes) -> None:
    assert DecisionCache.key(raw) is None


def test_a_hit_is_the_stored_reply_with_the_new_uid() -> None:
    cache, config = DecisionCache(), object()
    assert cache.put(config, handler, key(body("u-1")), "u-1", reply("u-1", "KNS004: legacy"), "patched")
    hit = cache.get(config, handler, *key(body("u-2")), body("u-2"))
    assert hit is not None and hit.outcome == "patched"
    assert hit.body == reply("u-2", "KNS004: legacy")
    assert (
        cache.get(config, other_handler, *key(body("u-2")), body("u-2")) is None
    )  # each endpoint its own entries


def test_only_a_first_uid_that_is_the_request_uid_is_stored() -> None:
    cache, config = DecisionCache(), object()
    # An owner reference's uid comes first: the byte search finds it, the parsed uid differs.
    raw = orjson.dumps(
        {"object": {"metadata": {"ownerReferences": [{"uid": "rs-1"}]}}, "request": {"uid": "u-1"}}
    )
    assert not cache.put(config, handler, key(raw), "u-1", reply("u-1"), "allowed")
    # The uid also appears elsewhere in the body (here: as the pod's name).
    assert not cache.put(config, handler, key(body("web-", "web-")), "web-", reply("web-"), "allowed")
    assert len(cache) == 0


def pod_body(uid: str, token_volume: str, extra_mount: str = "") -> bytes:
    mounts = [{"name": token_volume, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    if extra_mount:
        mounts.append({"name": extra_mount, "mountPath": "/x"})
    pod = {
        "spec": {"volumes": [{"name": token_volume}], "containers": [{"name": "app", "volumeMounts": mounts}]}
    }
    return orjson.dumps({"request": {"uid": uid, "object": pod}})


def test_the_service_account_token_volume_name_is_not_part_of_the_key() -> None:
    # The API server's ServiceAccount admission names it per pod, before webhooks run.
    one, two = key(pod_body("u-1", "kube-api-access-rzzgb")), key(pod_body("u-2", "kube-api-access-dcqrb"))
    assert one[0] == two[0]
    assert b"rzzgb" not in one[0]
    # Something else under the prefix, or the placeholder itself in the body: no key.
    assert DecisionCache.key(pod_body("u-3", "kube-api-access-toolong")) is None
    assert DecisionCache.key(pod_body("u-3", "kube-api-access-rzzgb", "kube-api-access-?????")) is None
    # Two different such names in one body: no key (the renaming would not be consistent).
    assert DecisionCache.key(pod_body("u-3", "kube-api-access-rzzgb", "kube-api-access-dcqrb")) is None
    cache, config = DecisionCache(), object()
    raw = pod_body("u-1", "kube-api-access-rzzgb")
    denial = orjson.dumps(
        {"response": {"uid": "u-1", "allowed": False, "status": {"message": "kube-api-access-rzzgb"}}}
    )
    assert not cache.put(config, handler, key(raw), "u-1", denial, "denied")  # the reply names it
    assert cache.put(config, handler, key(raw), "u-1", reply("u-1"), "allowed")
    hit = cache.get(
        config,
        handler,
        *key(pod_body("u-9", "kube-api-access-x2x2x")),
        pod_body("u-9", "kube-api-access-x2x2x"),
    )
    assert hit is not None and hit.body == reply("u-9")


def test_a_new_configuration_starts_afresh() -> None:
    cache, first, second = DecisionCache(), object(), object()
    cache.put(first, handler, key(body("u-1")), "u-1", reply("u-1"), "allowed")
    assert cache.get(second, handler, *key(body("u-1")), body("u-1")) is None
    cache.put(second, handler, key(body("u-1")), "u-1", reply("u-1"), "allowed")
    assert len(cache) == 1
    assert cache.get(first, handler, *key(body("u-1")), body("u-1")) is None


def test_errors_and_replies_quoting_the_uid_are_not_kept() -> None:
    cache, config = DecisionCache(), object()
    assert not cache.put(config, handler, key(body("u-1")), "u-1", reply("u-1"), "error")
    assert not cache.put(config, handler, key(body("u-1")), "u-1", reply("u-1", "u-1"), "denied")
    assert len(cache) == 0


def test_bounded_by_entries_and_bytes_least_recently_used_first() -> None:
    cache, config = DecisionCache(max_entries=3, max_bytes=10_000), object()
    bodies = [body(f"u-{i}", f"p{i}-") for i in range(5)]
    for i in range(3):
        cache.put(config, handler, key(bodies[i]), f"u-{i}", reply(f"u-{i}"), "allowed")
    assert cache.get(config, handler, *key(bodies[0]), bodies[0]) is not None  # 0 is now the most recent
    cache.put(config, handler, key(bodies[3]), "u-3", reply("u-3"), "allowed")
    assert cache.get(config, handler, *key(bodies[1]), bodies[1]) is None  # 1 was the least recent
    assert all(cache.get(config, handler, *key(bodies[i]), bodies[i]) is not None for i in (0, 2, 3))
    assert len(cache) == 3
    assert cache.size_bytes == sum(len(key(bodies[i])[0]) + len(reply(f"u-{i}")) for i in (0, 2, 3))
    # One entry larger than an eighth of the byte budget is never kept.
    assert not cache.put(config, handler, key(body("u-9", "x" * 2_000)), "u-9", reply("u-9"), "allowed")
    small = DecisionCache(max_entries=100, max_bytes=600)
    for i in range(4):
        small.put(config, handler, key(bodies[i]), f"u-{i}", reply(f"u-{i}"), "allowed")
    assert small.size_bytes <= 600 and len(small) < 4


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(pods())
def test_a_cached_reply_is_the_reply_an_uncached_server_gives(pod: dict[str, Any]) -> None:
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default",
            "operation": "CREATE",
            "object": pod,
        },
    }
    first = CACHED.post("/mutate", content=json.dumps(review), headers=HEADERS)  # fills the cache
    review["request"]["uid"] = str(uuid.uuid4())
    again = json.dumps(review)
    cached = CACHED.post("/mutate", content=again, headers=HEADERS)
    fresh = UNCACHED.post("/mutate", content=again, headers=HEADERS)
    assert first.status_code == cached.status_code == fresh.status_code == 200
    assert cached.content == fresh.content
    cache: DecisionCache = CACHED.app.state.decision_cache  # type: ignore[attr-defined]
    assert len(cache) > 0  # the second post really could come from the cache


def test_a_patch_that_carries_the_token_volume_name_is_not_kept() -> None:
    cache, config = DecisionCache(), object()
    raw = pod_body("u-1", "kube-api-access-rzzgb")
    ops = [{"op": "add", "path": "/spec/x", "value": "kube-api-access-rzzgb"}]
    patched = orjson.dumps(
        {"response": {"uid": "u-1", "allowed": True, "patch": base64.b64encode(orjson.dumps(ops)).decode()}}
    )
    assert not cache.put(config, handler, key(raw), "u-1", patched, "patched")


def test_the_first_hit_of_an_entry_checks_the_uid_position_once() -> None:
    cache, config = DecisionCache(), object()
    assert cache.put(config, handler, key(body("u-1")), "u-1", reply("u-1"), "allowed")
    hit = cache.get(config, handler, *key(body("u-2")), body("u-2"))
    assert hit is not None and hit.verified
    # Verified: a later body of the same shape is answered without parsing (here it would not
    # even parse: the check is not repeated).
    assert cache.get(config, handler, *key(body("u-3")), b"not json") is not None
    # An unverified entry whose first hit does not parse to that uid is dropped.
    other = DecisionCache()
    other.put(config, handler, key(body("u-1")), "u-1", reply("u-1"), "allowed")
    assert other.get(config, handler, *key(body("u-2")), b"not json") is None
    assert len(other) == 0 and other.size_bytes == 0


def test_a_renamed_body_that_spells_a_name_character_in_an_escape_is_not_stored() -> None:
    cache, config = DecisionCache(), object()
    plain = pod_body("u-1", "kube-api-access-rzzgb")
    for escape in (b"\\u006b", b"\\u002D", b"\\u0035"):  # k, -, 5
        raw = plain.replace(b'"app"', b'"' + escape + b'pp"')
        assert not cache.put(config, handler, key(raw), "u-1", reply("u-1"), "allowed")
    assert len(cache) == 0
    # The escapes the API server writes for <, > and & do not stand in the way.
    html = plain.replace(b'"app"', b'"\\u003capp\\u0026"')
    assert b"rzzgb" not in key(html)[0]
    assert cache.put(config, handler, key(html), "u-1", reply("u-1"), "allowed")
    # Without a token volume nothing is renamed, and the escape is only data.
    assert cache.put(config, handler, key(body("u-1", "\\u006bube")), "u-1", reply("u-1"), "allowed")


def test_a_configuration_naming_a_token_like_string_keeps_names_in_the_key() -> None:
    cache = DecisionCache()
    plain, odd = (
        KnscaleConfig(),
        KnscaleConfig.model_validate({"injection": {"skip_containers": ["kube-api-access-x"]}}),
    )
    one, two = pod_body("u-1", "kube-api-access-rzzgb"), pod_body("u-2", "kube-api-access-dcqrb")
    assert cache.key_for(plain, one) == key(one)
    renamed = cache.key_for(plain, two)
    assert renamed is not None and renamed[0] == key(one)[0]
    exact_one, exact_two = cache.key_for(odd, one), cache.key_for(odd, two)
    assert exact_one is not None and exact_two is not None
    assert b"rzzgb" in exact_one[0] and exact_one[0] != exact_two[0]
    assert cache.key_for(plain, one) == key(one)  # the rule follows the configuration object
