"""/metrics never takes a label value from a request (issue 16): whatever names, namespaces,
kinds, operations and annotation values the reviews carry, every knscale series' labels come
from fixed sets, so the number of series is bounded by the code, not by the callers."""

from __future__ import annotations

import json
import platform
import random
import re

from fastapi.testclient import TestClient

from fuzz.reviews import review, room_to_recurse
from translator.core.rule_ids import RuleId
from webhook.metrics import ENDPOINTS, OUTCOMES, knscale_version

# Every series, knscale's and the process collectors' alike.
_SERIES = re.compile(r"^([a-z_]+)\{([^}]*)\}", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_PYTHON = platform.python_version_tuple()
ALLOWED = {
    "endpoint": set(ENDPOINTS),
    "outcome": set(OUTCOMES),
    "result": {"hit", "miss"},
    "rule": {r.value for r in RuleId},
    # knscale_build_info and prometheus_client's python_info: fixed by the running process
    "component": {"webhook"},
    "version": {knscale_version(), platform.python_version()},
    "python": {platform.python_version()},
    "implementation": {platform.python_implementation()},
    "major": {_PYTHON[0]},
    "minor": {_PYTHON[1]},
    "patchlevel": {_PYTHON[2]},
}
# The one family whose series appear with use: a denial names the rules that denied it, each
# from the rule table, so at most endpoints × rules series (each a _total and a _created).
GROWING = ("knscale_webhook_denials_total", "knscale_webhook_denials_created")


def _labels(metrics_text: str) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for _, labels in _SERIES.findall(metrics_text):
        for name, value in _LABEL.findall(labels):
            seen.setdefault(name, set()).add(value)
    return seen


def test_labels_come_from_fixed_sets_whatever_the_reviews_carry(client: TestClient) -> None:
    rng = random.Random(16)
    before = _SERIES.findall(client.get("/metrics").text)
    contents = []
    with room_to_recurse():  # writing the generator's deep reviews; the server reads them at the default
        for i in range(120):
            r = review(rng)
            body = json.loads(r.body) if i % 3 else None
            if body is not None:  # attacker-chosen names and namespaces on top of the generator's values
                body["request"]["namespace"] = f"ns-{rng.getrandbits(32):x}"
                obj = body["request"].get("object")
                if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
                    obj["metadata"]["name"] = f"victim-{rng.getrandbits(32):x}"
            contents.append(json.dumps(body).encode() if body is not None else r.body)
    for content in contents:
        client.post(
            rng.choice(("/mutate", "/validate")),
            content=content,
            headers={"Content-Type": "application/json"},
        )
    text = client.get("/metrics").text
    seen = _labels(text)
    for name, values in seen.items():
        if name == "le":  # histogram buckets: fixed by the code
            continue
        assert name in ALLOWED, f"unexpected label {name!r}"
        assert values <= ALLOWED[name], (name, values - ALLOWED[name])
    # Requests add no series but denials by rule, and those are bounded by the rule table.
    after = _SERIES.findall(text)
    grown = [s for s in after if s[0] in GROWING]
    assert grown, "the generated reviews include denials: knscale_webhook_denials_total is exported"
    assert len(grown) <= 2 * len(ENDPOINTS) * len(RuleId)
    assert len(after) - len(grown) == len(before)
    assert "knscale_build_info{" in text and "process_resident_memory_bytes" in text
