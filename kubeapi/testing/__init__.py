"""The in-memory Kubernetes API the tests use."""
