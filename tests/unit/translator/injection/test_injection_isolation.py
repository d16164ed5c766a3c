"""The per-configuration precomputation behind `plan_injection` is never shared mutable state.

`translator.injection` works out what depends only on the configuration once (`fixed_parts`) and
builds each plan's dicts and lists fresh. Editing one plan, one patch, or the pod a patch was
applied to must not change the next admission; and a different configuration must never get
another configuration's parts.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from helpers.paths import ADMISSION_FIXTURES

from translator.config.knscale import InjectionConfig, KnscaleConfig
from translator.injection.common import INIT_CONTAINER_NAME
from translator.injection.plan import InjectionPlan, plan_injection
from webhook import admission
from webhook.patch import plan_ops

FIXTURES = ADMISSION_FIXTURES
CONFIG = KnscaleConfig(injection=InjectionConfig(env={"S3_ENDPOINT": "http://minio:9000"}))


def seed_review() -> dict[str, Any]:
    review: dict[str, Any] = json.loads((FIXTURES / "pod-create-v1.json").read_text())
    return review


def vandalise(value: Any) -> int:
    """Change every dict and list reachable from `value` in place; returns how many it changed."""
    changed = 0
    if isinstance(value, dict):
        for key in list(value):
            changed += vandalise(value[key])
            value[key] = "vandalised"
        value["extra"] = "vandalised"
        changed += 1
    elif isinstance(value, list):
        for item in value:
            changed += vandalise(item)
        value.append("vandalised")
        changed += 1
    return changed


def plan_parts(plan: InjectionPlan) -> list[Any]:
    """Every container of the plan that a caller could edit."""
    parts: list[Any] = [plan.annotations, plan.volumes, plan.init_container, plan.pod_security_context]
    for edit in plan.container_edits:
        parts += [edit.set_fields, edit.append]
    return parts


def test_editing_one_plan_does_not_change_the_next() -> None:
    pod = seed_review()["request"]["object"]
    first, _ = plan_injection(pod, "default", CONFIG)
    assert first is not None
    expected = copy.deepcopy(plan_ops(pod, first))

    assert sum(vandalise(part) for part in plan_parts(first)) > 20

    second, _ = plan_injection(pod, "default", CONFIG)
    assert second is not None
    assert plan_ops(pod, second) == expected
    assert second.init_container is not None
    assert second.init_container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "S3_ENDPOINT", "value": "http://minio:9000"} in second.init_container["env"]


def test_a_completed_pre_declared_init_container_shares_nothing_either() -> None:
    pod = seed_review()["request"]["object"]
    pod["spec"]["initContainers"] = [{"name": INIT_CONTAINER_NAME, "image": "mine/dl:1"}]
    first, _ = plan_injection(pod, "default", CONFIG)
    assert first is not None
    [edit] = [e for e in first.container_edits if e.list_field == "initContainers"]
    assert "securityContext" in edit.set_fields and "env" in edit.set_fields
    expected = copy.deepcopy(plan_ops(pod, first))

    vandalise(dict(edit.set_fields))  # the values (securityContext, env, mounts...) in place

    second, _ = plan_injection(pod, "default", CONFIG)
    assert second is not None
    assert plan_ops(pod, second) == expected


def test_editing_the_ops_does_not_change_the_next_admission() -> None:
    # The ops embed the plan's dicts and lists as their values (no copy on the way to the
    # encoder), so they are where a caller would most easily reach shared state.
    review = seed_review()
    body = json.dumps(review).encode()

    def admit() -> list[dict[str, Any]]:
        decision = admission.mutate(admission.parse_review(body), CONFIG)
        assert decision.outcome == "patched"
        patch = json.loads(decision.body)["response"]["patch"]
        ops: list[dict[str, Any]] = json.loads(base64.b64decode(patch))
        return ops

    before = admit()
    pod = review["request"]["object"]
    plan, _ = plan_injection(pod, "default", CONFIG)
    assert plan is not None
    ops = plan_ops(pod, plan)
    assert sum(vandalise(op["value"]) for op in ops) > 20

    assert admit() == before


def test_each_configuration_gets_its_own_parts() -> None:
    pod = seed_review()["request"]["object"]
    one = KnscaleConfig(injection=InjectionConfig(run_as_user=1111, env={"A": "1"}, skip_containers=()))
    two = KnscaleConfig(
        injection=InjectionConfig(
            run_as_user=2222, scratch_size_limit="3Gi", skip_containers=("user-container",)
        )
    )
    for _ in range(2):  # alternating: a cached part of one must never serve the other
        plan_one, _ = plan_injection(pod, "default", one)
        assert plan_one is not None and plan_one.init_container is not None
        assert plan_one.init_container["securityContext"]["runAsUser"] == 1111
        assert {"name": "A", "value": "1"} in plan_one.init_container["env"]
        assert [e.name for e in plan_one.container_edits] == ["user-container"]

        plan_two, findings = plan_injection(pod, "default", two)
        # user-container skipped too: only sidecars remain, which is a denial (KNS020).
        assert plan_two is None
        assert [f.rule_id for f in findings if f.is_error] == ["KNS020"]

        pod_two = copy.deepcopy(pod)
        pod_two["spec"]["containers"].append({"name": "app"})
        plan_two, _ = plan_injection(pod_two, "default", two)
        assert plan_two is not None and plan_two.init_container is not None
        assert plan_two.init_container["securityContext"]["runAsUser"] == 2222
        assert [v["emptyDir"].get("sizeLimit") for v in plan_two.volumes] == [None, "3Gi", "3Gi"]
        assert [e.name for e in plan_two.container_edits] == ["app"]
