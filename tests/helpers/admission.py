"""AdmissionReview fixtures (tests/fixtures/admission) and how tests post them."""

from __future__ import annotations

import json
from typing import Any

from helpers.paths import ADMISSION_FIXTURES

JSON_HEADERS = {"Content-Type": "application/json"}


def load(name: str) -> dict[str, Any]:
    """A review from tests/fixtures/admission, as a fresh dict each call."""
    doc: dict[str, Any] = json.loads((ADMISSION_FIXTURES / name).read_text())
    return doc
