"""Vendored protobuf schemas (see PROVENANCE.md); data files, not code."""
