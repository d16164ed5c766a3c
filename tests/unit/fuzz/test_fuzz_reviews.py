"""The admission campaign's generator sends JSON the API server could have sent.

A review whose body is not JSON is answered 400, which the campaign counts as a failure when the
envelope is meant to be intact; seed 3001 found duplicate annotation keys spliced into an empty
annotation map with a trailing comma (invalid JSON, 400) — a generator bug, not a server one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest

from fuzz.reviews import _duplicate_key, review, room_to_recurse


@pytest.fixture
def deep_reviews() -> Iterator[None]:
    with room_to_recurse():  # the generator writes ~1,200-deep reviews; no other test gets the limit
        yield


def test_duplicate_keys_in_an_empty_annotation_map_stay_json() -> None:
    text = json.dumps({"metadata": {"annotations": {}}})
    spliced = _duplicate_key(random.Random(1), text)
    assert spliced != text
    assert json.loads(spliced)["metadata"]["annotations"]


def test_duplicate_keys_before_existing_annotations_stay_json() -> None:
    text = json.dumps({"metadata": {"annotations": {"a": "b"}}})
    assert json.loads(_duplicate_key(random.Random(1), text))["metadata"]["annotations"]["a"] == "b"


@pytest.mark.usefixtures("deep_reviews")
def test_every_generated_body_is_json() -> None:
    rng = random.Random(3001)
    for _ in range(200):
        generated = review(rng)
        json.loads(generated.body)  # raises on the trailing comma the old splice left
