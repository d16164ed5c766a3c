"""Pure translation of annotations into validated settings, injection plans and manifests.

Nothing in this package performs I/O, reads the clock or imports a Kubernetes client; an
import-linter contract (pyproject.toml) keeps it so.
"""
