"""Knative Serving's own controller and webhook next to the e2e control plane.

Built by tests/e2e/build.sh from ``knative.dev/serving`` (tests/e2e/knative wrapper module); installed
from the manifests build.sh copied out of the module zips (``install/knative-*``, provenance in the
cache's PROVENANCE and tests/e2e/PROVENANCE.md). What this harness changes, and why:

- ``ko://knative.dev/serving/cmd/queue`` → ``QUEUE_IMAGE``, a well-formed image *by digest* (kwok nodes
  never pull images; a digest never makes Knative resolve a tag).
- ``config-deployment``: ``registries-skipping-tag-resolving`` lists every registry a test names, a
  backstop should a tag slip in (tag resolution is a registry lookup; the suite's network namespace
  would refuse it anyway).
- ``config-features``: ``kubernetes.podspec-init-containers`` and ``kubernetes.podspec-securitycontext``
  enabled, so Knative accepts what knscale's template mode writes into a Service template (an
  initContainer, and ``fsGroup`` in the pod securityContext).
- The Deployments are not applied: the binaries run as local processes. Only the ``webhook`` Service is
  kept, with an EndpointSlice at ``NETNS_ADDRESS`` (inside the suite's loopback-only namespace), so the
  apiserver (``--enable-aggregator-routing``) reaches the webhook the way Knative registers it.
- No networking layer (Kourier/Istio are not Go-module builds): nothing reconciles Ingresses or
  Certificates; ``mark_ingress_ready`` does what the networking layer would report.
- ``autoscaler`` (KPA) and ``autoscaler-hpa`` are not run: knscale replaces them (the reconciler's KPA
  loop and its ScaledObjects). ``autoscaler-hpa`` is built, and must never run beside knscale: both would
  own the HPA-class PodAutoscaler's status and ServerlessService (see test_scenario_4_real_keda.py).

The controller and the webhook authenticate as Knative's ServiceAccount ``knative-serving/controller``
(its Deployments' serviceAccountName), so Knative's own RBAC applies.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import yaml
from cluster import NETNS_ADDRESS, Component, ControlPlane, ControlPlaneError, wait_until

NAMESPACE = "knative-serving"
SERVICE_ACCOUNT = "controller"
QUEUE_IMAGE = (
    "registry.knscale.invalid/knative-serving/queue@sha256:"
    + hashlib.sha256(b"knscale e2e: queue-proxy stand-in, never pulled").hexdigest()
)
# Registries the tests name (images by digest, the downloader by tag inside pods only).
SKIP_TAG_RESOLVING = ",".join(
    [
        "kind.local",
        "ko.local",
        "dev.local",  # Knative's defaults
        "registry.knscale.invalid",
        "registry.example.com",
        "registry.test",
        "gcr.io",
        "ccr.ccs.tencentyun.com",
        "docker.io",
        "index.docker.io",
        "kserve",
    ]
)
FEATURES = {
    "kubernetes.podspec-init-containers": "enabled",
    "kubernetes.podspec-securitycontext": "enabled",
}
WEBHOOK_CONFIGS = (
    ("mutatingwebhookconfiguration", "webhook.serving.knative.dev"),
    ("validatingwebhookconfiguration", "validation.webhook.serving.knative.dev"),
    ("validatingwebhookconfiguration", "config.webhook.serving.knative.dev"),
)
WEBHOOK_PORT = 8443
STARTUP_TIMEOUT_S = 120.0


def digest_image(repo: str, seed: str) -> str:
    """A well-formed ``repo@sha256:<64 hex>`` (never pulled: kwok nodes run no containers)."""
    return f"{repo}@sha256:{hashlib.sha256(seed.encode()).hexdigest()}"


def load_documents(directory: Path) -> list[dict[str, Any]]:
    """Every YAML document of every file under ``directory``, each file parsed on its own."""
    docs: list[dict[str, Any]] = []
    files = sorted(directory.rglob("*.yaml"))
    if not files:
        raise ControlPlaneError(f"no manifests under {directory}: rerun tests/e2e/build.sh")
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append(doc)
    return docs


def apply_documents(cp: ControlPlane, docs: list[dict[str, Any]], manager: str) -> None:
    """Server-side apply in three steps: CRDs (then wait Established), Namespaces, everything else.
    The stream sent to kubectl separates documents with an explicit ``---``."""
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    rest = [d for d in docs if d["kind"] not in ("CustomResourceDefinition", "Namespace")]
    for batch in (crds, namespaces, rest):
        if not batch:
            continue
        stream = "".join("---\n" + json.dumps(d) + "\n" for d in batch)
        cp.kubectl(
            "apply", "--server-side", "--force-conflicts", f"--field-manager={manager}", "-f", "-",
            input=stream, timeout=180,
        )  # fmt: skip
        if batch is crds:
            cp.kubectl(
                "wait", "--for=condition=Established", "--timeout=60s",
                *[f"crd/{d['metadata']['name']}" for d in crds], timeout=90,
            )  # fmt: skip


def endpoint_slice(namespace: str, service: str, ports: dict[str, int]) -> dict[str, Any]:
    """An EndpointSlice for ``service`` at NETNS_ADDRESS (no endpointslice controller runs)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-e2e",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [NETNS_ADDRESS], "conditions": {"ready": True}}],
        "ports": [{"name": name, "port": port, "protocol": "TCP"} for name, port in ports.items()],
    }


class KnativeServing:
    """Install Knative Serving's manifests and run its controller and webhook as local processes."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.install_dir = cp.toolchain.root / "install"
        self.components: list[Component] = []

    # -- install --------------------------------------------------------------------------------------

    def documents(self) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = []
        for part in ("knative-caching", "knative-networking", "knative-serving"):
            for doc in load_documents(self.install_dir / part):
                if part == "knative-serving" and doc["kind"] in (
                    "Deployment",
                    "HorizontalPodAutoscaler",
                    "PodDisruptionBudget",
                ):
                    continue  # the binaries run as local processes
                docs.append(self._localise(doc))
        return docs

    def _localise(self, doc: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(doc).replace("ko://knative.dev/serving/cmd/queue", QUEUE_IMAGE)
        if "ko://" in text:
            raise ControlPlaneError(f"an unresolved ko:// image is left in {doc['kind']} {doc['metadata']}")
        out: dict[str, Any] = json.loads(text)
        name = out["metadata"].get("name")
        if out["kind"] == "ConfigMap" and name == "config-deployment":
            out.setdefault("data", {})["registries-skipping-tag-resolving"] = SKIP_TAG_RESOLVING
        if out["kind"] == "ConfigMap" and name == "config-features":
            out.setdefault("data", {}).update(FEATURES)
        return out

    def install(self) -> None:
        apply_documents(self.cp, self.documents(), "knscale-e2e-knative")
        apply_documents(
            self.cp,
            [endpoint_slice(NAMESPACE, "webhook", {"https-webhook": WEBHOOK_PORT})],
            "knscale-e2e-knative",
        )

    # -- processes ------------------------------------------------------------------------------------

    def _env(self, pod: str, profiling_port: int) -> dict[str, str]:
        env = self.cp.env()
        env.update(
            KUBECONFIG=str(self.cp.service_account_kubeconfig(NAMESPACE, SERVICE_ACCOUNT)),
            SYSTEM_NAMESPACE=NAMESPACE,
            POD_NAME=pod,
            CONFIG_LOGGING_NAME="config-logging",
            CONFIG_OBSERVABILITY_NAME="config-observability",
            PROFILING_PORT=str(profiling_port),
        )
        return env

    def start(self) -> None:
        """Start the webhook (waits until it registered itself with a caBundle), then the controller."""
        suffix = uuid.uuid4().hex[:5]
        webhook = Component(
            "knative-webhook",
            [str(self.cp.toolchain.tool("knative-webhook"))],
            self.cp.logs / "knative-webhook.log",
            ports=(WEBHOOK_PORT,),
        )
        env = self._env(f"webhook-{suffix}", 18008)
        env.update(WEBHOOK_NAME="webhook", WEBHOOK_PORT=str(WEBHOOK_PORT))
        self._launch(webhook, env)
        wait_until(
            lambda: self._check(webhook) and self._webhooks_registered(),
            timeout=STARTUP_TIMEOUT_S,
            what="Knative's webhook to register itself (caBundle in its webhook configurations)",
            on_timeout=lambda: webhook.tail(),
        )
        controller = Component(
            "knative-controller",
            [str(self.cp.toolchain.tool("knative-controller"))],
            self.cp.logs / "knative-controller.log",
        )
        self._launch(controller, self._env(f"controller-{suffix}", 18009))

    def _launch(self, component: Component, env: dict[str, str]) -> None:
        self.components.append(component)
        self.cp.components.append(component)  # torn down with the control plane whatever happens
        component.start(env, self.cp.root)

    def _check(self, component: Component) -> bool:
        if not component.alive():
            raise ControlPlaneError(f"{component.name} exited:\n{component.tail()}")
        return True

    def check_alive(self) -> None:
        for c in self.components:
            self._check(c)

    def _webhooks_registered(self) -> bool:
        for kind, name in WEBHOOK_CONFIGS:
            done = self.cp.kubectl("get", kind, name, "-o", "json", check=False)
            if done.returncode != 0:
                return False
            hooks = json.loads(done.stdout).get("webhooks") or []
            if not hooks or not all(h.get("clientConfig", {}).get("caBundle") for h in hooks):
                return False
            if kind == "mutatingwebhookconfiguration" and not all(h.get("rules") for h in hooks):
                return False
        # And the apiserver can reach it: a dry-run create of a Service goes through its webhooks.
        probe = {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": "probe", "namespace": "default"},
            "spec": {
                "template": {
                    "spec": {"containers": [{"image": digest_image("registry.knscale.invalid/probe", "p")}]}
                }
            },
        }
        done = self.cp.kubectl(
            "create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(probe), check=False
        )
        if done.returncode != 0:
            return False
        # Defaulted by Knative's webhook: the container got its name and the template its timeout.
        spec = json.loads(done.stdout)["spec"]["template"]["spec"]
        return bool(spec.get("timeoutSeconds")) and bool(spec["containers"][0].get("name"))

    def stop(self) -> None:
        """Stop both processes and delete the webhook configurations the webhook reconciled, so the
        Knative objects later tests create directly are not sent to a webhook that is gone."""
        for c in reversed(self.components):
            c.stop()
        self.cp.components = [c for c in self.cp.components if c not in self.components]
        self.components.clear()
        if self.cp.component("kube-apiserver").alive():
            for kind, name in WEBHOOK_CONFIGS:
                self.cp.kubectl("delete", kind, name, "--ignore-not-found", check=False)

    def tails(self) -> str:
        return "\n".join(f"--- {c.name} ---\n{c.tail(30)}" for c in self.components)

    # -- what the networking layer would do -----------------------------------------------------------

    def mark_ingress_ready(self, namespace: str, name: str) -> None:
        """Report the Route's Ingress Ready, with load balancers, as a networking layer would."""
        ing = wait_until(
            lambda: self._get("ingresses.networking.internal.knative.dev", name, namespace),
            timeout=60,
            what=f"Knative's Ingress {namespace}/{name}",
            on_timeout=self.tails,
        )
        since = "2026-01-01T00:00:00Z"
        lb = {"ingress": [{"domainInternal": f"{name}.{namespace}.svc.cluster.local"}]}
        status = {
            "observedGeneration": ing["metadata"]["generation"],
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": since}
                for t in ("LoadBalancerReady", "NetworkConfigured", "Ready")
            ],
            "publicLoadBalancer": lb,
            "privateLoadBalancer": lb,
        }
        self.cp.kubectl(
            "patch", "ingresses.networking.internal.knative.dev", name, "-n", namespace,
            "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}),
        )  # fmt: skip

    def _get(self, resource: str, name: str, namespace: str) -> dict[str, Any] | None:
        done = self.cp.kubectl("get", resource, name, "-n", namespace, "-o", "json", "--ignore-not-found")
        return json.loads(done.stdout) if done.stdout.strip() else None
