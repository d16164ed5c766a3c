"""What every injection plan takes from the configuration alone, worked out once per configuration."""

from __future__ import annotations

from dataclasses import dataclass

from translator.config.knscale import InjectionConfig
from translator.injection.common import ALWAYS_SKIPPED_CONTAINERS


@dataclass(frozen=True, slots=True)
class FixedParts:
    """What every plan takes from the configuration alone, worked out once per configuration.

    Only immutable values (strings, ints, tuples, frozensets): the dicts and lists of a plan are
    built fresh for each pod, so a caller that edits one plan (or the pod a patch was applied
    to) can never change the next one.
    """

    skipped: frozenset[str]  # containers that never get the model mount
    system_namespaces: frozenset[str]
    pull_policy: str
    fixed_env: tuple[tuple[str, str], ...]  # HOME, then injection.env, after the MODEL_* vars
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str
    run_as_user: int
    run_as_group: int
    home_dir: str
    scratch_size_limit: str
    fs_group: int


class FixedPartsCache:
    """A small memo of `FixedParts` per configuration, keyed by identity.

    Identity, because the configuration is frozen but not hashable (its `env` is a dict); the
    entry holds the configuration itself, so its id cannot be reused while it is cached. One
    configuration serves a process (a reload brings a new one), so a few entries are plenty;
    the oldest is dropped beyond `size`. Entries are replaced by one assignment of a new tuple,
    so concurrent callers at worst compute the same value twice.
    """

    def __init__(self, size: int = 4) -> None:
        if size < 1:
            raise ValueError("the cache needs room for at least one configuration")
        self._size = size
        self._entries: tuple[tuple[InjectionConfig, FixedParts], ...] = ()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, cfg: InjectionConfig) -> FixedParts:
        entries = self._entries
        for known, fixed in entries:
            if known is cfg:
                return fixed
        fixed = compute_fixed_parts(cfg)
        self._entries = ((cfg, fixed), *entries[: self._size - 1])
        return fixed

    def clear(self) -> None:
        self._entries = ()


def compute_fixed_parts(cfg: InjectionConfig) -> FixedParts:
    return FixedParts(
        skipped=ALWAYS_SKIPPED_CONTAINERS.union(cfg.skip_containers),
        system_namespaces=frozenset(cfg.system_namespaces),
        pull_policy=cfg.image_pull_policy,
        fixed_env=(("HOME", cfg.home_dir), *cfg.env.items()),
        cpu_request=cfg.cpu_request,
        memory_request=cfg.memory_request,
        cpu_limit=cfg.cpu_limit,
        memory_limit=cfg.memory_limit,
        run_as_user=cfg.run_as_user,
        run_as_group=cfg.run_as_group,
        home_dir=cfg.home_dir,
        scratch_size_limit=cfg.scratch_size_limit,
        fs_group=cfg.fs_group,
    )


# The process's cache: the plans of the webhook's hot path look their fixed parts up here.
FIXED_PARTS = FixedPartsCache()


def fixed_parts(cfg: InjectionConfig) -> FixedParts:
    return FIXED_PARTS.get(cfg)
