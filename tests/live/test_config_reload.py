"""`knscale serve --config FILE` re-reads the file (a mounted ConfigMap) while it runs."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from helpers.admission import review, seed_pod
from serve_process import client_context, run_certs, serve

pytestmark = pytest.mark.live

MUTATE = "/mutate"


def _allowed(client: httpx.Client) -> bool:
    reply = client.post(MUTATE, json=review("admission.k8s.io/v1", seed_pod(), "reload"))
    assert reply.status_code == 200
    allowed: bool = reply.json()["response"]["allowed"]
    return allowed


def test_a_changed_config_file_takes_effect_and_a_bad_one_is_ignored(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    run_certs(certs)
    config = tmp_path / "config.yaml"
    config.write_text("injection: {}\n")
    with (
        serve(
            tmp_path,
            certs / "ca.crt",
            "--cert-file",
            str(certs / "tls.crt"),
            "--key-file",
            str(certs / "tls.key"),
            "--config",
            str(config),
        ) as served,
        httpx.Client(base_url=served.base_url, verify=client_context(certs / "ca.crt"), timeout=10) as client,
    ):
        assert _allowed(client)  # the seed's own downloader image: no allowlist by default

        # Opt into an image allowlist that the seed's image does not match.
        config.write_text("injection:\n  image_allowlist: ['registry.example.com/*']\n")
        deadline = time.monotonic() + 15
        while _allowed(client):
            assert time.monotonic() < deadline, "the new configuration never took effect"
            time.sleep(0.5)

        # An invalid version is reported in the log and the last good configuration stays.
        config.write_text("injection:\n  image_allowlist: 7\n")
        deadline = time.monotonic() + 15
        while "invalid" not in served.log_text():
            assert time.monotonic() < deadline, "the invalid configuration was never reported"
            time.sleep(0.5)
        assert not _allowed(client)
        assert "image_allowlist" in served.log_text()
