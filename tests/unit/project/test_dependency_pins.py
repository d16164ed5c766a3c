"""The dependency pins in pyproject.toml are what the code needs, and the installed versions fit.

kubeapi/client.py builds requests with `ApiClient.param_serialize` + `call_api`, which only the
regenerated client (kubernetes 37) has: on an older client the first call raised AttributeError.
webhook/server.py subclasses uvicorn's private httptools protocol for request-head deadlines;
a new uvicorn minor may move or rename what the subclass overrides or reads. These tests fail
first, with a message that names what moved, instead of a production webhook that stops
enforcing its deadlines.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib import metadata

from helpers.paths import REPO

ROOT = REPO


def _requirement(name: str) -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [spec] = [d for d in deps if re.match(rf"{re.escape(name)}(\[|[<>=!~ ]|$)", d)]
    return str(spec)


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _pinned_range(name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    spec = _requirement(name)
    low = re.search(r">=\s*([0-9.]+)", spec)
    high = re.search(r"<\s*([0-9.]+)", spec)
    assert low and high, f"{spec}: want an explicit >=X,<Y range"
    low_v, high_v = low.group(1), high.group(1)
    return _minor(low_v + ".0"), _minor(high_v + ".0")


# ---- kubernetes ------------------------------------------------------------------------------


def test_kubernetes_is_pinned_to_the_one_major_whose_api_client_the_adapter_calls() -> None:
    low, high = _pinned_range("kubernetes")
    assert (low[0], high[0]) == (37, 38), _requirement("kubernetes")
    installed = _minor(metadata.version("kubernetes"))
    assert low[0] <= installed[0] < high[0]


def test_the_installed_api_client_has_what_kubeapi_calls() -> None:
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    serialize = inspect.signature(kclient.ApiClient.param_serialize).parameters
    for param in ("method", "resource_path", "query_params", "header_params", "body", "auth_settings"):
        assert param in serialize, f"ApiClient.param_serialize lost {param!r}"
    call = inspect.signature(kclient.ApiClient.call_api).parameters
    for param in ("method", "url", "header_params", "body", "post_params", "_request_timeout"):
        assert param in call, f"ApiClient.call_api lost {param!r}"
    assert callable(kclient.ApiClient.close)
    assert hasattr(kclient.Configuration(), "connection_pool_maxsize")
    kube_config = inspect.signature(kconfig.load_kube_config).parameters
    for param in ("config_file", "context", "client_configuration", "persist_config"):
        assert param in kube_config, f"load_kube_config lost {param!r}"
    assert "client_configuration" in inspect.signature(kconfig.load_incluster_config).parameters


def test_call_api_answers_with_the_raw_response_kubeapi_reads() -> None:
    """`KubernetesApi` reads `.response` (urllib3: read/release_conn/close/status, iterable)."""
    from kubernetes.client import rest

    source = inspect.getsource(rest.RESTResponse)
    assert "self.response = resp" in source, "RESTResponse no longer keeps the urllib3 response"


# ---- uvicorn ---------------------------------------------------------------------------------


def test_uvicorn_is_pinned_to_the_installed_minor() -> None:
    low, high = _pinned_range("uvicorn")
    installed = _minor(metadata.version("uvicorn"))
    assert low == installed and high == (installed[0], installed[1] + 1), (
        f"{_requirement('uvicorn')} vs installed {metadata.version('uvicorn')}: the read-deadline "
        "subclass was checked against one minor only"
    )


def test_the_private_protocol_the_deadline_subclass_extends_is_still_there() -> None:
    from uvicorn.protocols.http import httptools_impl

    from webhook.server import DeadlineHttpToolsProtocol

    base = httptools_impl.HttpToolsProtocol
    assert issubclass(DeadlineHttpToolsProtocol, base)
    # The hooks the subclass overrides, with the arguments it passes on.
    expected = {
        "connection_made": ["self", "transport"],
        "on_headers_complete": ["self"],
        "on_response_complete": ["self"],
        "connection_lost": ["self", "exc"],
    }
    for name, params in expected.items():
        method = base.__dict__.get(name)
        assert method is not None, f"HttpToolsProtocol.{name} moved"
        assert list(inspect.signature(method).parameters) == params, f"HttpToolsProtocol.{name} changed"
    # The attributes it reads: the loop (set in __init__) and the transport (set on connect).
    assert "self.loop =" in inspect.getsource(base.__init__)
    assert "self.transport = transport" in inspect.getsource(base.connection_made)
    # The hooks are reached the way the subclass assumes: httptools calls the protocol's
    # on_headers_complete, and each response cycle calls back on_response_complete.
    assert "HttpRequestParser(self)" in inspect.getsource(base.__init__)
    assert "on_response=self.on_response_complete" in inspect.getsource(base.on_headers_complete)
