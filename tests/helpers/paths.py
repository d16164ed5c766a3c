"""Where things are, relative to the repository — written once for every test suite."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
DOCS = REPO / "docs"
FIXTURES = TESTS / "fixtures"
ADMISSION_FIXTURES = FIXTURES / "admission"
SCHEMAS = TESTS / "schemas"
SHARED = REPO.parent / "shared"  # the steering repo's shared/ beside the clone (traces, references)
