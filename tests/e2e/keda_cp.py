"""KEDA's operator, admission webhooks and metrics adapter next to the e2e control plane, plus a
kube-controller-manager that runs only the HPA controller.

Built by tests/e2e/build.sh from ``github.com/kedacore/keda/v2`` (tests/e2e/keda wrapper module, with
KEDA's own replace block); installed from the manifests build.sh copied out of the module zip
(``install/keda``: CRDs, namespace, ServiceAccount, RBAC, Services, the ValidatingWebhookConfiguration
and the external-metrics APIService). Local changes, and why:

- Certificates: KEDA's deployment turns on ``--enable-cert-rotation`` (the operator writes a Secret that
  the kubelet mounts into all three pods, and the operator exits once so it restarts with the mounted
  files). No kubelet mounts anything here, so the harness does the same thing directly: one serving +
  client certificate from the e2e CA in a cert dir shared by the three processes (tls.crt, tls.key,
  ca.crt — the file names of KEDA's Secret), and the CA as caBundle of the webhook configuration and
  the APIService (what the cert rotator patches in). Rotation stays off: nothing would mount new files.
- Services get EndpointSlices at NETNS_ADDRESS (inside the suite's loopback-only network namespace);
  the apiserver reaches the webhooks and the APIService through them (``--enable-aggregator-routing``).
- The adapter dials the operator's gRPC metrics service at 127.0.0.1:9666 instead of
  keda-operator.keda.svc.cluster.local (no cluster DNS). Health and metrics listeners move to loopback
  ports of their own (all three default to :8080/:8081).
- All three authenticate as ServiceAccount keda/keda-operator, which KEDA's RBAC binds.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
from collections.abc import Iterator
from typing import Any

from cluster import Component, ControlPlane, ControlPlaneError, wait_until
from knative_cp import apply_documents, endpoint_slice, load_documents
from knscale_procs import Exporter, Prometheus

NAMESPACE = "keda"
SERVICE_ACCOUNT = "keda-operator"
WEBHOOK_CONFIG = "keda-admission"
APISERVICE = "v1beta1.external.metrics.k8s.io"
WEBHOOKS_PORT = 9443
ADAPTER_PORT = 6443
GRPC_PORT = 9666
STARTUP_TIMEOUT_S = 120.0


class Keda:
    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.install_dir = cp.toolchain.root / "install" / "keda"
        self.cert_dir = cp.root / "keda-certs"
        self.components: list[Component] = []

    # -- install --------------------------------------------------------------------------------------

    def _certs(self) -> None:
        assert self.cp.pki is not None
        self.cert_dir.mkdir(mode=0o700, exist_ok=True)
        pair = self.cp.pki.issue(
            "keda",
            "keda-operator",
            server=True,
            client=True,  # the adapter's gRPC client presents the same files to the operator
            sans=(
                "keda-operator.keda.svc",
                "keda-operator.keda.svc.cluster.local",
                "keda-admission-webhooks.keda.svc",
                "keda-metrics-apiserver.keda.svc",
                "127.0.0.1",
                "localhost",
            ),
        )
        shutil.copy(pair.cert, self.cert_dir / "tls.crt")
        shutil.copy(pair.key, self.cert_dir / "tls.key")
        shutil.copy(self.cp.ca_cert, self.cert_dir / "ca.crt")

    def documents(self) -> list[dict[str, Any]]:
        ca = base64.b64encode(self.cp.ca_cert.read_bytes()).decode()
        docs = []
        for doc in load_documents(self.install_dir):
            if doc["kind"] == "ValidatingWebhookConfiguration":
                for hook in doc["webhooks"]:
                    hook["clientConfig"]["caBundle"] = ca
            if doc["kind"] == "APIService":
                doc["spec"]["caBundle"] = ca
            docs.append(doc)
        return docs

    def install(self) -> None:
        self._certs()
        apply_documents(self.cp, self.documents(), "knscale-e2e-keda")
        apply_documents(
            self.cp,
            [
                endpoint_slice(NAMESPACE, "keda-admission-webhooks", {"https": WEBHOOKS_PORT}),
                endpoint_slice(NAMESPACE, "keda-metrics-apiserver", {"https": ADAPTER_PORT}),
            ],
            "knscale-e2e-keda",
        )

    # -- processes ------------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = self.cp.env()
        env.update(
            KUBECONFIG=str(self.cp.service_account_kubeconfig(NAMESPACE, SERVICE_ACCOUNT)),
            WATCH_NAMESPACE="",  # all namespaces, as KEDA's deployment sets it
            POD_NAMESPACE=NAMESPACE,
            POD_NAME="keda-e2e",
            KEDA_CLUSTER_OBJECT_NAMESPACE=NAMESPACE,
        )
        return env

    def start(self) -> None:
        kubeconfig = str(self.cp.service_account_kubeconfig(NAMESPACE, SERVICE_ACCOUNT))
        certs = str(self.cert_dir)
        tool = self.cp.toolchain.tool
        operator = Component(
            "keda-operator",
            [
                str(tool("keda-operator")),
                "--leader-elect=false",
                "--zap-log-level=info",
                "--zap-encoder=console",
                "--enable-cert-rotation=false",
                f"--cert-dir={certs}",
                "--metrics-bind-address=127.0.0.1:18180",
                "--health-probe-bind-address=127.0.0.1:18181",
                f"--metrics-service-bind-address=127.0.0.1:{GRPC_PORT}",
            ],
            self.cp.logs / "keda-operator.log",
            ports=(GRPC_PORT,),
        )
        webhooks = Component(
            "keda-webhooks",
            [
                str(tool("keda-webhooks")),
                "--zap-log-level=debug",  # logs "scaledobject is valid" per validated ScaledObject
                "--zap-encoder=console",
                f"--cert-dir={certs}",
                f"--port={WEBHOOKS_PORT}",
                "--metrics-bind-address=127.0.0.1:18182",
                "--health-probe-bind-address=127.0.0.1:18183",
            ],
            self.cp.logs / "keda-webhooks.log",
            ports=(WEBHOOKS_PORT,),
        )
        adapter = Component(
            "keda-adapter",
            [
                str(tool("keda-adapter")),
                f"--secure-port={ADAPTER_PORT}",
                f"--cert-dir={certs}",
                f"--tls-cert-file={certs}/tls.crt",
                f"--tls-private-key-file={certs}/tls.key",
                f"--client-ca-file={certs}/ca.crt",
                f"--lister-kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--metrics-service-address=127.0.0.1:{GRPC_PORT}",
                "--port=18184",  # its own Prometheus metrics endpoint (default :8080)
                "--zap-log-level=info",
            ],
            self.cp.logs / "keda-adapter.log",
            ports=(ADAPTER_PORT,),
        )
        for c in (operator, webhooks, adapter):
            self.components.append(c)
            self.cp.components.append(c)
            c.start(self._env(), self.cp.root)
        wait_until(
            self._available,
            timeout=STARTUP_TIMEOUT_S,
            what="KEDA's external metrics APIService to be Available and its webhook to answer",
            on_timeout=self.tails,
        )

    def check_alive(self) -> None:
        for c in self.components:
            if not c.alive():
                raise ControlPlaneError(f"{c.name} exited:\n{c.tail()}")

    def _available(self) -> bool:
        self.check_alive()
        done = self.cp.kubectl("get", "apiservice", APISERVICE, "-o", "json", check=False)
        if done.returncode != 0:
            return False
        conds = {
            c["type"]: c["status"] for c in json.loads(done.stdout).get("status", {}).get("conditions", [])
        }
        if conds.get("Available") != "True":
            return False
        # The webhook answers: a ScaledObject without triggers is refused by KEDA's webhook with its
        # own message (its failurePolicy is Ignore, so a refusal proves it was called).
        return bool(self.webhook_answers())

    def webhook_answers(self) -> str | None:
        """KEDA's webhook refuses an idleReplicaCount not below minReplicaCount (a rule of its own, not
        of the CRD schema); its failurePolicy is Ignore, so only a refusal proves it was called."""
        bad = {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "probe", "namespace": NAMESPACE},
            "spec": {
                "scaleTargetRef": {"name": "nothing"},
                "minReplicaCount": 1,
                "idleReplicaCount": 2,
                "triggers": [
                    {
                        "type": "prometheus",
                        "metadata": {"serverAddress": "http://127.0.0.1:1", "query": "q", "threshold": "1"},
                    }
                ],
            },
        }
        done = self.cp.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False)
        if done.returncode != 0 and 'admission webhook "vscaledobject.kb.io" denied' in done.stderr:
            return done.stderr
        return None

    def stop(self) -> None:
        for c in reversed(self.components):
            c.stop()
        self.cp.components = [c for c in self.cp.components if c not in self.components]
        self.components.clear()
        if self.cp.component("kube-apiserver").alive():
            # No webhook, no adapter behind them any more: unregister both, as uninstalling KEDA does.
            self.cp.kubectl("delete", "validatingwebhookconfiguration", WEBHOOK_CONFIG, "--ignore-not-found")
            self.cp.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found")

    def tails(self) -> str:
        return "\n".join(f"--- {c.name} ---\n{c.tail(30)}" for c in self.components)


def hpa_controller(cp: ControlPlane, *, sync_period: str = "2s") -> Component:
    """A second kube-controller-manager running only the HPA controller (the session's runs none, so
    scenarios that fake HPA status are not overwritten), with a short sync period."""
    assert cp.pki is not None
    cfg = cp.root / "kcm-hpa.kubeconfig"
    if not cfg.exists():
        pair = cp.pki.issue("kcm-hpa", "system:kube-controller-manager", client=True)
        cp._write_kubeconfig(cfg, "system:kube-controller-manager", pair)
    kcm = Component(
        "kube-controller-manager-hpa",
        [
            str(cp.toolchain.tool("kube-controller-manager")),
            f"--kubeconfig={cfg}",
            "--controllers=horizontal-pod-autoscaler-controller",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--secure-port=0",
            f"--horizontal-pod-autoscaler-sync-period={sync_period}",
            "--horizontal-pod-autoscaler-downscale-stabilization=10s",
            "--v=1",
        ],
        cp.logs / "kube-controller-manager-hpa.log",
    )
    cp.launch(kcm)
    return kcm


@contextlib.contextmanager
def keda_stack(cp: ControlPlane) -> Iterator[tuple[Keda, Prometheus, Exporter]]:
    """KEDA running with a Prometheus scraping one exporter and the HPA controller that acts on
    KEDA's HPAs; everything stopped again on the way out. Raises ControlPlaneError (with KEDA's
    log tails) when KEDA does not start."""
    exporter = Exporter()
    prom = Prometheus(cp, [exporter.address])
    keda = Keda(cp)
    kcm = None
    try:
        try:
            keda.install()
            keda.start()
        except ControlPlaneError as exc:
            raise ControlPlaneError(f"KEDA did not start: {exc}\n{keda.tails()}") from None
        kcm = hpa_controller(cp)
        yield keda, prom, exporter
    finally:
        if kcm is not None:
            cp.retire(kcm)
        keda.stop()
        prom.stop()
        exporter.close()
