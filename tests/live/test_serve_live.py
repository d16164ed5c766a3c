"""`knscale serve` as a real subprocess on loopback, over real TLS verified against the CA."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import shlex
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonpatch
import pytest
from helpers.admission import SEED_ANNOTATIONS, review, seed_pod
from serve_process import Served, client_context, run_certs, serve

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def certdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    run_certs(out)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, certdir: Path) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    with serve(
        tmp,
        certdir / "ca.crt",
        "--cert-file",
        str(certdir / "tls.crt"),
        "--key-file",
        str(certdir / "tls.key"),
    ) as served:
        yield served


@pytest.fixture(scope="module")
def client(server: Served, certdir: Path) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, verify=client_context(certdir / "ca.crt"), timeout=10) as c:
        yield c


@pytest.mark.parametrize("api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
def test_mutate_seed_pod_over_verified_tls(client: httpx.Client, api_version: str) -> None:
    pod = seed_pod()
    reply = client.post("/mutate", json=review(api_version, pod, f"uid-{api_version}"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["apiVersion"] == api_version and body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == f"uid-{api_version}" and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    patched = jsonpatch.apply_patch(copy.deepcopy(pod), ops)
    assert [c["name"] for c in patched["spec"]["initContainers"]] == ["knscale-model-init"]
    assert any("knscale.dev/" in w for w in response.get("warnings", []))  # bare keys name the canonical key


def test_reinvocation_yields_no_patch(client: httpx.Client) -> None:
    pod = seed_pod()
    first = client.post("/mutate", json=review("admission.k8s.io/v1", pod, "a")).json()["response"]
    patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(first["patch"])))
    second = client.post("/mutate", json=review("admission.k8s.io/v1", patched, "b")).json()["response"]
    assert second["allowed"] is True and "patch" not in second and "patchType" not in second


def test_validate_seed_ksvc(client: httpx.Client) -> None:
    ksvc = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "helloworld-go", "namespace": "default"},
        "spec": {
            "template": {
                "metadata": {"annotations": dict(SEED_ANNOTATIONS)},
                "spec": {"containers": [{"image": "x"}]},
            }
        },
    }
    reply = client.post(
        "/validate",
        json=review(
            "admission.k8s.io/v1",
            ksvc,
            "v-1",
            kind="Service",
            group="serving.knative.dev",
            resource="services",
        ),
    )
    assert reply.status_code == 200
    assert reply.json()["response"]["allowed"] is True


def test_bad_requests_get_4xx_not_500(client: httpx.Client) -> None:
    assert client.post("/mutate", content=b"{}", headers={"content-type": "text/plain"}).status_code == 415
    assert (
        client.post("/mutate", content=b"{not json", headers={"content-type": "application/json"}).status_code
        == 400
    )


def test_probes_and_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "mutate" in metrics.text


def _handshake(server: Served, ctx: ssl.SSLContext, hostname: str = "localhost") -> str:
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        version = tls.version()
        assert version is not None
        return version


def _pinned_client(ca: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = client_context(ca)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so the client really offers old versions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def test_tls12_and_13_work(server: Served, certdir: Path) -> None:
    assert _handshake(server, _pinned_client(certdir / "ca.crt", ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
    assert _handshake(server, _pinned_client(certdir / "ca.crt", ssl.TLSVersion.TLSv1_3)) == "TLSv1.3"
    ctx = _pinned_client(certdir / "ca.crt", ssl.TLSVersion.TLSv1_2)
    with httpx.Client(verify=ctx, timeout=5) as c:
        assert c.get(f"{server.base_url}/healthz").status_code == 200


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_below_12_is_refused(server: Served, certdir: Path, version: ssl.TLSVersion) -> None:
    client = _pinned_client(certdir / "ca.crt", version)
    # Control: this client really completes an old-version handshake with a server that allows it,
    # so the failure below is knscale's refusal, not the client's own policy.
    assert (
        _permissive_handshake(certdir, client)
        == {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1"}[version]
    )
    with pytest.raises(ssl.SSLError) as exc:
        _handshake(server, client)
    # The server answers with a protocol_version alert or just drops the handshake.
    assert exc.value.reason in {
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "UNSUPPORTED_PROTOCOL",
        "UNEXPECTED_EOF_WHILE_READING",
    }


def _permissive_handshake(certdir: Path, client: ssl.SSLContext) -> str:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1
    server_ctx.load_cert_chain(certdir / "tls.crt", certdir / "tls.key")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def accept() -> None:
            conn, _ = listener.accept()
            with contextlib.suppress(OSError), server_ctx.wrap_socket(conn, server_side=True):
                pass

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            version = tls.version()
        thread.join(timeout=5)
    assert version is not None
    return version


def test_certificate_is_verified_by_name_and_ca(server: Served, certdir: Path, tmp_path: Path) -> None:
    for name in (
        "localhost",
        "knscale-webhook.knscale-system.svc",
        "knscale-webhook.knscale-system.svc.cluster.local",
    ):
        _handshake(server, client_context(certdir / "ca.crt"), name)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, client_context(certdir / "ca.crt"), "evil.example.com")
    other = tmp_path / "other"
    run_certs(other)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, client_context(other / "ca.crt"))


def test_embedded_default_makes_certs_and_prints_a_working_curl(tmp_path: Path) -> None:
    cert_dir = tmp_path / "auto"
    with serve(tmp_path, cert_dir / "ca.crt", "--embedded", "--cert-dir", str(cert_dir)) as served:
        assert sorted(p.name for p in cert_dir.iterdir()) == [
            "ca.crt",
            "ca.key",
            "caBundle",
            "tls.crt",
            "tls.key",
        ]
        banner = served.log_text()
        assert f"curl --cacert {cert_dir / 'ca.crt'} {served.base_url}/healthz" in banner
        mutate_line = next(line for line in banner.splitlines() if "/mutate" in line and "curl" in line)
        argv = shlex.split(mutate_line)
        review = json.loads(argv[argv.index("-d") + 1])
        with httpx.Client(verify=client_context(cert_dir / "ca.crt"), timeout=10) as c:
            reply = c.post(argv[-1], json=review)
        assert reply.status_code == 200 and reply.json()["response"]["patchType"] == "JSONPatch"
        assert re.search(r"knscale register --url \S+ --ca-file \S+", banner)
        code = served.stop()
    assert code == 0  # SIGTERM is a graceful, clean stop
    assert "Shutting down" in served.log_text()


def test_port_in_use_is_a_clear_error(server: Served, tmp_path: Path, certdir: Path) -> None:
    import subprocess

    from serve_process import knscale_argv

    result = subprocess.run(
        [
            *knscale_argv(),
            "serve",
            "--port",
            str(server.port),
            "--cert-file",
            str(certdir / "tls.crt"),
            "--key-file",
            str(certdir / "tls.key"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "address already in use" in (result.stderr + result.stdout).lower()
