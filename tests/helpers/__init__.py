"""Helpers shared by several test suites, written once (tests/ is on sys.path via tests/conftest.py)."""
