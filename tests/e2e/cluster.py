"""A real Kubernetes control plane on loopback for knscale's end-to-end tests.

etcd + kube-apiserver always; kube-controller-manager + kube-scheduler + kwok (fake nodes, so pods
become Running and Ready without a kubelet) on request. All binaries come from tests/e2e/build.sh's
cache. Everything listens on 127.0.0.1 only, every process runs in its own process group (and dies
with its parent), and all state — certificates, kubeconfigs, etcd data, logs, a private HOME for
kubectl and kn — lives in one temporary directory that ``stop()`` removes.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parents[1]
BUILD_SCRIPT = E2E_DIR / "build.sh"

# The annotation kwok watches: only nodes carrying it are simulated (and only ours carry it).
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# Controllers that make ownership and workloads real; nothing that needs a cloud, a kubelet or node IPAM.
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",  # scenario 5: StatefulSet pods have predictable names (web-0, web-1, ...)
    # Knative's and KEDA's ClusterRoles (knative-serving-admin, ...) are aggregated from labelled ones.
    "clusterrole-aggregation-controller",
)
# The address netns.sh puts on the namespace's loopback: EndpointSlices of webhook/APIService Services
# point here (an EndpointSlice may not name 127.0.0.0/8), and it exists only inside the namespace.
NETNS_ADDRESS = "10.250.0.1"
WORKLOAD_COMPONENTS = frozenset({"kube-controller-manager", "kube-scheduler", "kwok"})
STARTUP_TIMEOUT_S = 120.0  # a loaded 2-core machine: apiserver readiness took ~10 s idle (docs/testing.md)
STOP_GRACE_S = 10.0

T = TypeVar("T")


class ControlPlaneError(RuntimeError):
    """The harness could not build, start or talk to the control plane; the message says what to do."""


def read_versions(path: Path = E2E_DIR / "versions.env") -> dict[str, str]:
    """The KEY=VALUE pins of versions.env (comments and blank lines ignored)."""
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if not sep:
                raise ControlPlaneError(f"{path}: not KEY=VALUE: {raw!r}")
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class Toolchain:
    """The built binaries, CRDs and kwok stages of one cache directory of build.sh."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def crds(self) -> Path:
        return self.root / "crds"

    @property
    def kwok_stages(self) -> Path:
        return self.root / "kwok-stages.yaml"

    def tool(self, name: str) -> Path:
        return self.bin / name

    @classmethod
    def locate(cls) -> Toolchain:
        """The cache directory for the current versions.env (``KNSCALE_E2E_DIR`` overrides), fully built."""
        override = os.environ.get("KNSCALE_E2E_DIR")
        if override:
            root = Path(override)
        else:
            try:
                done = subprocess.run(
                    ["bash", str(BUILD_SCRIPT), "--print-dir"],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ControlPlaneError(f"cannot run {BUILD_SCRIPT} --print-dir: {exc}") from exc
            if done.returncode != 0:
                raise ControlPlaneError(
                    f"{BUILD_SCRIPT} --print-dir failed: {done.stderr.strip()}\n"
                    "fix: run `make e2e` (or `bash tests/e2e/build.sh`) first"
                )
            root = Path(done.stdout.strip().splitlines()[-1])
        if not (root / ".complete").is_file():
            raise ControlPlaneError(
                f"the e2e binaries are not built in {root}; fix: run `bash tests/e2e/build.sh` "
                "(cold: 25-45 min on 2 cores, then cached)"
            )
        return cls(root)


# --- certificates -------------------------------------------------------------------------------------


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created 0600 from the start: a private key never exists world-readable, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


class Pki:
    """A throw-away CA that issues the apiserver's serving cert and the clients' certs (ECDSA P-256)."""

    def __init__(
        self, directory: Path, *, now: dt.datetime | None = None, ca_name: str = "knscale-e2e-ca"
    ) -> None:
        self.dir = directory
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._now = now or dt.datetime.now(dt.UTC)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
        self._ca_name = name
        ca_cert = (
            self._builder(name, self._ca_key.public_key())
            .issuer_name(name)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca = CertPair(self.dir / "ca.crt", self.dir / "ca.key")
        self.ca.cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_key(self.ca.key, self._ca_key)

    def _builder(self, subject: x509.Name, public_key: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - dt.timedelta(minutes=5))
            .not_valid_after(self._now + dt.timedelta(days=2))
        )

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
        sans: Sequence[str] = ("127.0.0.1", "localhost"),
    ) -> CertPair:
        """Sign a leaf cert; ``server`` certs get IP/DNS SANs (Go verifies SANs, never the CN)."""
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            self._builder(x509.Name(attrs), key.public_key())
            .issuer_name(self._ca_name)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if server:
            alt: list[x509.GeneralName] = []
            for san in sans:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(san)))
                except ValueError:
                    alt.append(x509.DNSName(san))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        pair = CertPair(self.dir / f"{name}.crt", self.dir / f"{name}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(pair.key, key)
        return pair

    def service_account_key(self) -> Path:
        """The RSA key that signs (and verifies) service-account tokens, as in a kubeadm cluster."""
        path = self.dir / "sa.key"
        _write_key(path, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return path


# --- processes ----------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL this process if the test process dies without cleaning up."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the kernel's pick, released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Component:
    """One control-plane process: its own session/process group, output in a log file."""

    name: str
    argv: list[str]
    log: Path
    ports: tuple[int, ...] = ()
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str], cwd: Path) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds, and reap the leader."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=grace)
        # The group may outlive its leader (not expected of these Go binaries, but never leak one).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it returns something other than None/False; raise with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            detail = f"\n{on_timeout()}" if on_timeout else ""
            raise ControlPlaneError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


# --- the control plane --------------------------------------------------------------------------------


class ControlPlane:
    """etcd + kube-apiserver (+ optional controller-manager, scheduler, kwok) under one temp directory."""

    def __init__(
        self, toolchain: Toolchain, *, root: Path | None = None, apiserver_flags: Sequence[str] = ()
    ) -> None:
        self.toolchain = toolchain
        self.apiserver_flags = tuple(apiserver_flags)  # appended to kube-apiserver's (feature gates …)
        self.root = root or Path(tempfile.mkdtemp(prefix="knscale-e2e-"))
        self.logs = self.root / "logs"
        self.home = self.root / "home"  # kubectl's discovery cache and kn's config stay in here
        for d in (self.logs, self.home):
            d.mkdir(parents=True, exist_ok=True)
        self.components: list[Component] = []
        self.pki: Pki | None = None
        self.front_proxy: Pki | None = None
        self.api_port = 0
        self.kubeconfig = self.root / "admin.kubeconfig"
        self.audit_log = self.logs / "audit-deletes.log"
        self.nodes: list[str] = []
        self._stopped = False

    # -- facts for tests ------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def ca_cert(self) -> Path:
        assert self.pki is not None, "start() first"
        return self.pki.ca.cert

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self.components if c.pid is not None]

    @property
    def ports(self) -> list[int]:
        return [p for c in self.components for p in c.ports]

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def env(self) -> dict[str, str]:
        """Environment for kubectl/kn/knscale subprocesses: this cluster only, nothing from ~/.kube."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "KN_"))}
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            KUBECACHEDIR=str(self.home / ".kube" / "cache"),
        )
        return env

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self, *, install_crds: bool = True) -> None:
        """Start etcd and kube-apiserver, wait for /readyz, write the admin kubeconfig, apply the CRDs."""
        self.pki = Pki(self.root / "pki")
        serving = self.pki.issue("apiserver", "kube-apiserver", server=True, sans=("127.0.0.1", "localhost"))
        admin = self.pki.issue("admin", "knscale-e2e-admin", organizations=["system:masters"], client=True)
        sa_key = self.pki.service_account_key()
        # The aggregation layer (KEDA's metrics adapter behind an APIService) authenticates the apiserver's
        # proxied requests by a client cert from a CA of its own, as kubeadm's front-proxy CA.
        self.front_proxy = Pki(self.root / "pki" / "front-proxy", ca_name="knscale-e2e-front-proxy-ca")
        self.front_proxy.issue("front-proxy-client", "front-proxy-client", client=True)

        etcd_client = self._with_free_ports(2, self._start_etcd)
        self._with_free_ports(
            1, lambda ports: self._start_apiserver(ports[0], etcd_client, serving, admin, sa_key)
        )
        if install_crds:
            self.install_crds()

    def _with_free_ports(self, count: int, start: Callable[[list[int]], T]) -> T:
        """Run ``start`` with fresh loopback ports; retry when another process took a port between our
        probe and the server's bind (the machine is shared, so that race is real if rare)."""
        for attempt in range(3):
            ports = [free_port() for _ in range(count)]
            try:
                return start(ports)
            except ControlPlaneError as exc:
                if "address already in use" not in str(exc) or attempt == 2:
                    raise
                failed = self.components.pop()
                failed.stop()
        raise AssertionError("unreachable")

    def _start_etcd(self, ports: list[int]) -> int:
        client, peer = ports
        etcd = Component(
            "etcd",
            [
                str(self.toolchain.tool("etcd")),
                "--name=e2e",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=e2e=http://127.0.0.1:{peer}",
                "--log-level=warn",
                "--unsafe-no-fsync",  # a throw-away store: durability costs time and buys nothing here
            ],
            self.logs / "etcd.log",
            ports=(client, peer),
        )
        self._launch(etcd)
        wait_until(
            lambda: self._etcd_healthy(client),
            timeout=STARTUP_TIMEOUT_S,
            what="etcd /health",
            on_timeout=lambda: self._diagnose(etcd),
        )
        return client

    def _start_apiserver(
        self, port: int, etcd_client: int, serving: CertPair, admin: CertPair, sa_key: Path
    ) -> None:
        assert self.pki is not None
        self.api_port = port
        # An audit log of deletes only (small, cheap): when a test sees an object vanish, it can say
        # who deleted it (the garbage collector, a controller, the test) instead of guessing.
        audit_policy = self.root / "audit-policy.yaml"
        audit_policy.write_text(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
            "  - level: Metadata\n    verbs: [delete, deletecollection]\n  - level: None\n"
        )
        apiserver = Component(
            "kube-apiserver",
            [
                str(self.toolchain.tool("kube-apiserver")),
                f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.pki.dir / 'apiserver-generated'}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={self.pki.ca.cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                "--endpoint-reconciler-type=none",  # no default/kubernetes Endpoints pointing at loopback
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",  # less CPU on two shared cores
                # Aggregation (KEDA's external metrics APIService) and Service-referenced webhooks
                # (Knative's, KEDA's): the apiserver dials the EndpointSlice address (NETNS_ADDRESS, inside
                # the suite's network namespace), since no kube-proxy makes ClusterIPs reachable.
                "--enable-aggregator-routing=true",
                f"--requestheader-client-ca-file={self._front_proxy_pki().ca.cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={self._front_proxy_pki().dir / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={self._front_proxy_pki().dir / 'front-proxy-client.key'}",
                "--profiling=false",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--v=1",
                *self.apiserver_flags,
            ],
            self.logs / "kube-apiserver.log",
            ports=(port,),
        )
        self._launch(apiserver)
        self._write_kubeconfig(self.kubeconfig, "knscale-e2e-admin", admin)
        wait_until(
            lambda: self._readyz(admin),
            timeout=STARTUP_TIMEOUT_S,
            what="kube-apiserver /readyz",
            on_timeout=lambda: self._diagnose(apiserver),
        )

    def _front_proxy_pki(self) -> Pki:
        assert self.front_proxy is not None, "start() first"
        return self.front_proxy

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        """A kubeconfig that authenticates as ServiceAccount ``namespace/name`` (a client cert with the
        user and group names the token authenticator would give it), so RBAC applies as in a cluster."""
        assert self.pki is not None, "start() first"
        path = self.root / f"sa-{namespace}-{name}.kubeconfig"
        if not path.exists():
            pair = self.pki.issue(
                f"sa-{namespace}-{name}",
                f"system:serviceaccount:{namespace}:{name}",
                organizations=["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
                client=True,
            )
            self._write_kubeconfig(path, f"system:serviceaccount:{namespace}:{name}", pair)
        return path

    def launch(self, component: Component) -> None:
        """Start an extra component that ``stop()`` tears down with the rest (see also ``retire``)."""
        self._launch(component)

    def retire(self, component: Component) -> None:
        """Stop a component started by ``launch`` before the control plane itself stops."""
        component.stop()
        self.components = [c for c in self.components if c is not component]

    def install_crds(self) -> list[str]:
        """Server-side apply every CRD build.sh extracted; wait until each is Established."""
        files = sorted(self.toolchain.crds.rglob("*.yaml"))
        if not files:
            raise ControlPlaneError(f"no CRDs under {self.toolchain.crds}: rerun tests/e2e/build.sh")
        # Server-side apply: Knative's CRDs are >100 KiB, too big for the last-applied annotation.
        args = ["apply", "--server-side", "--field-manager=knscale-e2e"]
        for f in files:
            args += ["-f", str(f)]
        self.kubectl(*args, timeout=120)
        names = self.crd_names()
        self.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names], timeout=90
        )
        return names

    def crd_names(self) -> list[str]:
        """metadata.name of every CRD file in the toolchain (kubectl parses the YAML; nothing is sent)."""
        out = self.kubectl(
            "create", "--dry-run=client", "-o", "name", "-R", "-f", str(self.toolchain.crds), timeout=60
        ).stdout
        prefix = "customresourcedefinition.apiextensions.k8s.io/"
        return sorted(line.removeprefix(prefix) for line in out.split() if line.startswith(prefix))

    def start_workloads(self, *, nodes: int = 2) -> None:
        """kube-controller-manager, kube-scheduler and kwok with ``nodes`` fake nodes, all Ready."""
        assert self.pki is not None, "start() first"
        kcm_cert = self.pki.issue("kcm", "system:kube-controller-manager", client=True)
        kcm_cfg = self.root / "kcm.kubeconfig"
        self._write_kubeconfig(kcm_cfg, "system:kube-controller-manager", kcm_cert)
        sched_cert = self.pki.issue("scheduler", "system:kube-scheduler", client=True)
        sched_cfg = self.root / "scheduler.kubeconfig"
        self._write_kubeconfig(sched_cfg, "system:kube-scheduler", sched_cert)

        kcm = Component(
            "kube-controller-manager",
            [
                str(self.toolchain.tool("kube-controller-manager")),
                f"--kubeconfig={kcm_cfg}",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--root-ca-file={self.pki.ca.cert}",
                f"--service-account-private-key-file={self.pki.dir / 'sa.key'}",
                # One service account per controller, bound to its bootstrap RBAC role, as kubeadm runs it.
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--secure-port=0",  # no metrics/health endpoint: nothing of ours scrapes it
                "--concurrent-gc-syncs=5",
                "--v=1",
            ],
            self.logs / "kube-controller-manager.log",
        )
        scheduler = Component(
            "kube-scheduler",
            [
                str(self.toolchain.tool("kube-scheduler")),
                f"--kubeconfig={sched_cfg}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=1",
            ],
            self.logs / "kube-scheduler.log",
        )
        kwok = Component(
            "kwok",
            [
                str(self.toolchain.tool("kwok")),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={self.toolchain.kwok_stages}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
                "--cidr=10.244.0.0/16",  # fake pod IPs: never routed, never dialled
                "--node-ip=10.96.0.1",
            ],
            self.logs / "kwok.log",
        )
        for c in (kcm, scheduler, kwok):
            self._launch(c)
        for i in range(nodes):
            self.add_node(f"kwok-node-{i}")
        wait_until(
            lambda: all(self._node_ready(n) for n in self.nodes) or None,
            timeout=STARTUP_TIMEOUT_S,
            what=f"kwok to mark nodes {self.nodes} Ready",
            on_timeout=lambda: self._diagnose(kwok),
        )
        # The TaintNodesByCondition admission plugin taints every new node not-ready:NoSchedule; the node
        # lifecycle controller would lift it once the node reports Ready. That controller (and the heartbeats
        # it needs) is not run - nothing here tests node health - so lift the taint the way it would.
        for name in self.nodes:
            self.kubectl("patch", "node", name, "--type=merge", "-p", '{"spec":{"taints":null}}')
        # The serviceaccount controller is what lets pods into a fresh namespace: wait for it to work.
        wait_until(
            lambda: (
                self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0
            ),
            timeout=STARTUP_TIMEOUT_S,
            what="the serviceaccount controller to create default/default",
            on_timeout=lambda: self._diagnose(kcm),
        )

    def stop_workloads(self) -> None:
        """Stop kube-controller-manager, kube-scheduler and kwok; etcd and the apiserver keep running."""
        for c in reversed(self.components):
            if c.name in WORKLOAD_COMPONENTS:
                c.stop()
        self.components = [c for c in self.components if c.name not in WORKLOAD_COMPONENTS]

    def add_node(self, name: str) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(node))
        self.nodes.append(name)

    def stop(self) -> None:
        """Stop every component (reverse start order) and remove the temp directory. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        errors: list[str] = []
        for c in reversed(self.components):
            try:
                c.stop()
            except Exception as exc:  # keep stopping the others; report all at the end
                errors.append(f"{c.name}: {exc}")
        keep = os.environ.get("KNSCALE_E2E_KEEP_LOGS")
        if keep:
            dest = Path(keep) / self.root.name
            shutil.copytree(self.logs, dest, dirs_exist_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise ControlPlaneError("teardown problems: " + "; ".join(errors))

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients --------------------------------------------------------------------------------------

    def run(
        self,
        tool: str,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run a built client (kubectl, kn) against this cluster; ``check`` raises with its stderr."""
        argv = [str(self.toolchain.tool(tool)), *args]
        done = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.root,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise ControlPlaneError(
                f"{tool} {' '.join(args)} exited {done.returncode}:\n{done.stderr.strip() or done.stdout}"
            )
        return done

    def deletes(self, resource: str, namespace: str, name: str | None = None) -> list[str]:
        """Who deleted what, from the apiserver's audit log: "user (agent) verb code" per delete of
        ``resource`` (plural) in ``namespace``, oldest first."""
        found: list[str] = []
        if not self.audit_log.exists():
            return found
        for line in self.audit_log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            ref = event.get("objectRef") or {}
            if ref.get("resource") != resource or ref.get("namespace") != namespace:
                continue
            if name is not None and ref.get("name") != name:
                continue
            who = (event.get("user") or {}).get("username", "?")
            code = (event.get("responseStatus") or {}).get("code", "?")
            found.append(
                f"{ref.get('name')}: {who} ({event.get('userAgent', '?')[:60]}) {event.get('verb')} {code}"
            )
        return found

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, input=input, check=check, timeout=timeout)

    def kn(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return self.run("kn", *args, input=input, check=check, timeout=timeout)

    def get(self, resource: str, name: str = "", namespace: str | None = None) -> dict[str, Any]:
        args = ["get", resource, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        result: dict[str, Any] = json.loads(self.kubectl(*args).stdout)
        return result

    def find(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The stored object, or None when there is none (one call, no error for a missing one)."""
        args = ["get", resource, name, "-o", "json", "--ignore-not-found"]
        if namespace:
            args += ["-n", namespace]
        done = self.kubectl(*args)
        return json.loads(done.stdout) if done.stdout.strip() else None

    def exists(self, resource: str, name: str, namespace: str | None = None) -> bool:
        args = ["get", resource, name, "--ignore-not-found", "-o", "name"]
        if namespace:
            args += ["-n", namespace]
        return bool(self.kubectl(*args).stdout.strip())

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        """A namespace with its ``default`` ServiceAccount (which the ServiceAccount admission plugin
        requires for pods; without kube-controller-manager nothing else would create it)."""
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
        sa = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": name},
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(ns))
        # The SA controller may race us to create it; either way it must exist afterwards.
        self.kubectl("create", "-f", "-", input=json.dumps(sa), check=False)
        wait_until(
            lambda: self.exists("serviceaccount", "default", name), timeout=30, what=f"{name}/default SA"
        )

    # -- internals ------------------------------------------------------------------------------------

    def _launch(self, component: Component) -> None:
        self.components.append(component)  # before start: a failed start is still torn down
        component.start(self.env(), self.root)

    def _diagnose(self, component: Component) -> str:
        state = "running" if component.alive() else f"exited {component.proc and component.proc.returncode}"
        return f"{component.name} ({state}); last lines of {component.log}:\n{component.tail()}"

    def _check_alive(self, component: Component) -> None:
        if not component.alive():
            raise ControlPlaneError(f"{component.name} died during startup: {self._diagnose(component)}")

    def _etcd_healthy(self, port: int) -> bool:
        self._check_alive(self.component("etcd"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/health")
            body = conn.getresponse().read()
        except OSError:
            return False
        finally:
            conn.close()
        return b'"health":"true"' in body

    def _readyz(self, admin: CertPair) -> bool:
        self._check_alive(self.component("kube-apiserver"))
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(admin.cert), str(admin.key))
        conn = http.client.HTTPSConnection("127.0.0.1", self.api_port, context=ctx, timeout=5)
        try:
            conn.request("GET", "/readyz")
            status = conn.getresponse().status
        except OSError:
            return False
        finally:
            conn.close()
        return status == 200

    def _node_ready(self, name: str) -> bool:
        for c in self.components:
            if c.name in WORKLOAD_COMPONENTS:
                self._check_alive(c)
        node = json.loads(self.kubectl("get", "node", name, "-o", "json", check=False).stdout or "{}")
        conds = node.get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

    def _write_kubeconfig(self, path: Path, user: str, pair: CertPair) -> None:
        assert self.pki is not None
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "knscale-e2e",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_cert)},
                }
            ],
            "users": [
                {"name": user, "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)}}
            ],
            "contexts": [{"name": "knscale-e2e", "context": {"cluster": "knscale-e2e", "user": user}}],
            "current-context": "knscale-e2e",
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh, indent=1)


@contextlib.contextmanager
def running_control_plane(
    toolchain: Toolchain,
    *,
    workloads: bool = False,
    install_crds: bool = True,
    apiserver_flags: Sequence[str] = (),
) -> Iterator[ControlPlane]:
    """A started control plane for the duration of a ``with`` block; stopped whatever happens inside."""
    cp = ControlPlane(toolchain, apiserver_flags=apiserver_flags)
    try:
        cp.start(install_crds=install_crds)
        if workloads:
            cp.start_workloads()
        yield cp
    finally:
        cp.stop()
