"""What the injection modules share: knscale's names for what it adds (one place, so plan,
checks and template mode agree on what knscale owns) and the shape helpers of the hot path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

INIT_CONTAINER_NAME = "knscale-model-init"
MODEL_VOLUME = "knscale-model"
TMP_VOLUME = "knscale-model-tmp"
HOME_VOLUME = "knscale-model-home"
ALWAYS_SKIPPED_CONTAINERS: frozenset[str] = frozenset({"queue-proxy", "istio-proxy"})
INJECTED_VALUE = "true"
OWNED_VOLUMES: frozenset[str] = frozenset({MODEL_VOLUME, TMP_VOLUME, HOME_VOLUME})


def is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # Admission objects are plain dicts: test for dict first, the (slow) ABC check only for others.
    return type(value) is dict or isinstance(value, Mapping)


def as_map(value: Any) -> Mapping[str, Any]:
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def kubelet_literal(text: str) -> str:
    """`text` as a container's `command`, `args` or env `value` that the kubelet leaves as is.

    The kubelet expands `$(NAME)` there from the container's environment (envFrom Secrets
    included) after admission, and turns `$$` into `$`: so a checked value such as
    `s3://bucket/$(DOTS)/x` would reach the downloader as another path. Doubling every `$`
    makes the kubelet hand over exactly the text knscale checked.
    """
    return text.replace("$", "$$")
