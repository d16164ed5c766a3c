"""The in-memory Kubernetes API every test uses, and builders of the objects tests seed it with.

Shipped with the package (not under tests/) so that every suite, the benchmarks and downstream
code test against one fake of one protocol, which the mypy-strict and import-linter checks cover.
"""

from kubeapi.testing.fake import FakeKube
from kubeapi.testing.model import Call
from kubeapi.testing.objects import CLASS_KEY, HPA, KPA, hpa, pod, pod_autoscaler, sks_ready_status, workload

__all__ = [
    "CLASS_KEY",
    "HPA",
    "KPA",
    "Call",
    "FakeKube",
    "hpa",
    "pod",
    "pod_autoscaler",
    "sks_ready_status",
    "workload",
]
