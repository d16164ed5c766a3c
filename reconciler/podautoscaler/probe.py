"""Is the activator in the revision's data path? Knative's probe, restated (reference §5.3).

``GET http://<serviceName>.<namespace>.svc.cluster.local:80/healthz`` with ``K-Network-Probe:
activator`` and ``User-Agent: Knative-Autoscaling-Probe``; in the path when the answer is HTTP 200
with the body ``activator`` (the activator answers so; a pod's queue-proxy does not). ``address``
sends the request to HOST:PORT instead, keeping the Host header (tests, on loopback).
"""

from __future__ import annotations

import logging

import httpx

log = logging.getLogger(__name__)

PROBE_HEADERS = {"K-Network-Probe": "activator", "User-Agent": "Knative-Autoscaling-Probe"}
PROBE_TIMEOUT = 1.0


class ActivatorProber:
    def __init__(
        self,
        address: str | None = None,
        *,
        cluster_domain: str = "cluster.local",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._address = address
        self._domain = cluster_domain
        self._client = httpx.Client(timeout=PROBE_TIMEOUT, transport=transport)

    def probe(self, service: str, namespace: str) -> bool:
        host = f"{service}.{namespace}.svc.{self._domain}"
        target = self._address or f"{host}:80"
        try:
            resp = self._client.get(f"http://{target}/healthz", headers={**PROBE_HEADERS, "Host": host})
        except httpx.HTTPError as exc:
            log.debug("activator probe of %s failed: %s", host, exc)
            return False
        return resp.status_code == 200 and resp.text == "activator"

    def close(self) -> None:
        self._client.close()
