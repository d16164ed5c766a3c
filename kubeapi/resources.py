"""REST collections: one `Resource` type and the collections knscale reads and writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resource:
    """A REST collection: `/apis/<group>/<version>/namespaces/<ns>/<plural>` (core group: `/api/v1`)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path. A namespaced collection without a namespace means all namespaces (list, watch)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{_segment(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{_segment(name)}"
            if subresource:
                base += f"/{_segment(subresource)}"
        return base

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _segment(value: str) -> str:
    # Names come from the API server or from settings, but a name is still input: refuse
    # anything that would change the URL's shape rather than escaping it into something the
    # server may reinterpret.
    if not value or "/" in value or value in {".", ".."} or any(c in value for c in "?#%\\"):
        raise ValueError(f"invalid path segment {value!r}")
    return value


# The reconciler's collections.
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
STATEFULSETS = Resource("apps", "v1", "statefulsets", "StatefulSet")
PODS = Resource("", "v1", "pods", "Pod")
EVENTS = Resource("", "v1", "events", "Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
SCALEDOBJECTS = Resource("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject")
PODAUTOSCALERS = Resource("autoscaling.internal.knative.dev", "v1alpha1", "podautoscalers", "PodAutoscaler")
SERVERLESSSERVICES = Resource(
    "networking.internal.knative.dev", "v1alpha1", "serverlessservices", "ServerlessService"
)

# The webhook's: its certificate Secret and its two configurations.
SECRETS = Resource("", "v1", "secrets", "Secret")
MUTATING_WEBHOOKS = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration",
    namespaced=False,
)
VALIDATING_WEBHOOKS = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration",
    namespaced=False,
)

WORKLOADS: dict[str, Resource] = {"Deployment": DEPLOYMENTS, "StatefulSet": STATEFULSETS}
# Every collection above by kind (kinds are unique here), for manifests that name only their kind.
BY_KIND: dict[str, Resource] = {
    r.kind: r
    for r in (
        DEPLOYMENTS,
        STATEFULSETS,
        PODS,
        EVENTS,
        LEASES,
        HPAS,
        SCALEDOBJECTS,
        PODAUTOSCALERS,
        SERVERLESSSERVICES,
        SECRETS,
        MUTATING_WEBHOOKS,
        VALIDATING_WEBHOOKS,
    )
}
