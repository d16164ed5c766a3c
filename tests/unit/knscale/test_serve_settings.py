"""knscale/settings/serve.py and the certs/register commands (in-process, no cluster)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from certs.files import CertPaths
from certs.pki import ca_bundle
from knscale.cli import main
from knscale.settings import SettingsError
from knscale.settings.serve import build_serve_settings


def test_defaults_are_the_local_embedded_setup() -> None:
    s = build_serve_settings({})
    assert (s.host, s.port, s.cert_mode, s.tls_min_version) == ("127.0.0.1", 8443, "local", "1.2")
    assert s.serving_cert == Path(".knscale/certs/tls.crt")
    assert s.namespace == "knscale-system"


def test_cert_modes() -> None:
    assert build_serve_settings({"in_cluster": True}).cert_mode == "secret"
    given = build_serve_settings({"cert_file": Path("a.crt"), "key_file": Path("a.key"), "in_cluster": True})
    assert given.cert_mode == "files" and given.serving_key == Path("a.key")
    mounted = build_serve_settings({"manage_certs": False, "cert_dir": Path("/var/run/x")})
    assert mounted.cert_mode == "files" and mounted.serving_cert == Path("/var/run/x/tls.crt")


def test_namespace_from_environment_unless_given() -> None:
    assert build_serve_settings({}, {"KNSCALE_NAMESPACE": "ops"}).namespace == "ops"
    assert build_serve_settings({"namespace": "dev"}, {"KNSCALE_NAMESPACE": "ops"}).namespace == "dev"


@pytest.mark.parametrize(
    "given", [{"namespace": "ops\n"}, {"service_name": "hook\n"}, {"dns_names": ("a.example\n",)}]
)
def test_a_trailing_newline_is_not_a_valid_name(given: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        build_serve_settings(given)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as exc:
        build_serve_settings(
            {
                "port": 70000,
                "namespace": "Not_Valid",
                "cert_file": Path("a.crt"),
                "ip_addresses": ("1.2.3.999",),
                "tls_min_version": "1.1",
                "embedded": True,
                "in_cluster": True,
                "host": "0.0.0.0",
            }
        )
    text = str(exc.value)
    for expected in (
        "--port",
        "--namespace",
        "--ip-addresses",
        "1.2.3.999",
        "--tls-min-version",
        "--cert-file and --key-file",
        "--embedded and --in-cluster",
        "drop --host 0.0.0.0",
    ):
        assert expected in text, (expected, text)


def test_serve_reports_bad_flags_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--cert-file", "x.crt"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "--port" in err and "--key-file" in err
    assert "Traceback" not in err


def test_serve_reports_unreadable_cert_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--cert-file", str(tmp_path / "no.crt"), "--key-file", str(tmp_path / "no.key")])
    assert code == 1
    assert "cannot read" in capsys.readouterr().err


def test_certs_command_writes_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c"
    assert (
        main(["certs", "--out", str(out), "--service", "hook", "--namespace", "ns", "--ip", "10.0.0.7"]) == 0
    )
    text = capsys.readouterr().out
    assert text.startswith(f"created certificates in {out}")
    assert "hook.ns.svc.cluster.local" in text and "10.0.0.7" in text and "127.0.0.1" in text
    paths = CertPaths(out)
    assert paths.ca_bundle.read_text().strip() == ca_bundle(paths.ca_cert.read_bytes())
    assert (
        main(["certs", "--out", str(out), "--service", "hook", "--namespace", "ns", "--ip", "10.0.0.7"]) == 0
    )
    assert capsys.readouterr().out.startswith("kept certificates")


def test_certs_command_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--ip", "nope"]) == 2
    assert "--ip" in capsys.readouterr().err
    assert main(["certs", "--out", str(tmp_path), "--days", "0"]) == 2


def test_register_prints_both_configurations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["certs", "--out", str(tmp_path)])
    capsys.readouterr()
    ca_file = tmp_path / "ca.crt"
    assert main(["register", "--url", "https://127.0.0.1:9443", "--ca-file", str(ca_file)]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    hooks = [d["webhooks"][0] for d in docs]
    assert [h["clientConfig"]["url"] for h in hooks] == [
        "https://127.0.0.1:9443/mutate",
        "https://127.0.0.1:9443/validate",
    ]
    assert all(base64.b64decode(h["clientConfig"]["caBundle"]) == ca_file.read_bytes() for h in hooks)


def test_register_service_target_without_ca(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["register", "--service", "hook", "--namespace", "ops"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    client = docs[0]["webhooks"][0]["clientConfig"]
    assert client == {"service": {"name": "hook", "namespace": "ops", "path": "/mutate", "port": 443}}
    assert "ops" in docs[0]["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["register", "--url", "http://127.0.0.1:1"], "scheme must be https"),
        (["register", "--url", "https://127.0.0.1:1"], "--url needs --ca-file"),
        (["register", "--service", "x", "--ca-file", "/nonexistent/ca.crt"], "--ca-file"),
    ],
)
def test_register_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_register_rejects_a_ca_file_that_is_not_a_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "ca.crt"
    bad.write_text("hello")
    assert main(["register", "--service", "x", "--ca-file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "--ca-file" in err and ("not a PEM certificate" in err or "no certificate" in err), err


def test_register_apply_without_cluster_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "kubeconfig"
    assert main(["register", "--apply", "--kubeconfig", str(missing)]) == 1
    assert "cannot load kubeconfig" in capsys.readouterr().err
    assert main(["unregister", "--kubeconfig", str(missing)]) == 1
    assert "cannot load kubeconfig" in capsys.readouterr().err


def test_in_cluster_outside_a_cluster_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["serve", "--in-cluster", "--cert-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "knscale serve --in-cluster: ConfigError: not running in a cluster" in err
    assert "Traceback" not in err
