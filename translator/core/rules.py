"""The one table of rule ids. Every denial and every lint finding comes from a rule here.

Ranges (design.md): KNS0xx model injection and webhook policy, KNS1xx Knative autoscaling
keys, KNS2xx autoscaler-keda / KEDA translation, KNS9xx input errors. Ids are stable: never
reuse or renumber one; they are the `RuleId` enum (rule_ids.py), and every id has a row here.
Each id is documented in docs/rules.md with a good and a bad example;
tests/unit/test_rules_documented.py keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from translator.core.findings import Finding, ObjectRef, Severity
from translator.core.redact import redact_text
from translator.core.rule_ids import RuleId

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


@dataclass(frozen=True, slots=True)
class Rule:
    id: RuleId
    severity: Severity
    title: str

    def finding(
        self,
        obj: ObjectRef,
        path: str,
        key: str | None,
        value: Any,
        message: str,
        fix: str | None = None,
    ) -> Finding:
        # Every finding is made here: the one place where a secret in a value can be kept from
        # lint output, denials, warnings and logs (translator.core.redact).
        shown = _bounded(value)
        if isinstance(shown, str):
            shown = redact_text(shown)
        return Finding(
            self.id,
            self.severity,
            obj,
            path,
            key,
            shown,
            redact_text(message),
            None if fix is None else redact_text(fix),
        )


def _bounded(value: Any) -> Any:
    """A finding's value as shown (text, JSON, SARIF): a structure is summarised, never expanded
    (a YAML alias bomb under an annotation is a small tree of shared nodes but a huge string)."""
    if isinstance(value, Mapping):
        return f"<map of {len(value)} keys>"
    if isinstance(value, list | tuple | set):
        return f"<list of {len(value)} items>"
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return value


def _table(*rules: Rule) -> dict[RuleId, Rule]:
    table: dict[RuleId, Rule] = {}
    for r in rules:
        if r.id in table:
            raise ValueError(f"duplicate rule id {r.id}")
        table[r.id] = r
    missing = set(RuleId) - table.keys()
    if missing:
        raise ValueError(f"rule ids without a rule: {sorted(missing)}")
    return table


RULES: dict[RuleId, Rule] = _table(
    # ---- KNS0xx: model injection and webhook policy -------------------------------------
    Rule(RuleId.KNS001, E, "the inject flag must be true or false"),
    Rule(RuleId.KNS002, E, "model injection requested without a model source"),
    Rule(RuleId.KNS003, W, "model keys have no effect without the inject flag"),
    Rule(RuleId.KNS004, W, "legacy model key: use the canonical knscale.dev/ key"),
    Rule(RuleId.KNS005, E, "two model keys give conflicting values"),
    Rule(RuleId.KNS006, E, "model source is malformed"),
    Rule(RuleId.KNS007, E, "model source scheme is not supported"),
    Rule(RuleId.KNS008, E, "model source scheme is not allowed by policy"),
    Rule(RuleId.KNS009, E, "model source location is not on the allowlist"),
    Rule(RuleId.KNS010, E, "path traversal: a '..' segment in a model path, URI or mount path"),
    Rule(RuleId.KNS011, E, "credentials embedded in a model URI"),
    Rule(RuleId.KNS012, E, "model mount path is invalid"),
    Rule(RuleId.KNS013, E, "model mount path is already used by a container"),
    Rule(RuleId.KNS014, E, "downloader image is not a valid image reference"),
    Rule(RuleId.KNS015, E, "downloader image is not on the allowlist"),
    Rule(RuleId.KNS016, E, "credentials secret name is invalid"),
    Rule(RuleId.KNS017, E, "model size limit is not a valid quantity"),
    Rule(RuleId.KNS018, E, "model injection into a system namespace is refused"),
    Rule(RuleId.KNS019, W, "model key has no effect with a pvc:// source"),
    Rule(RuleId.KNS020, E, "no app container to mount the model into"),
    Rule(RuleId.KNS021, W, "model key on the workload's own metadata has no effect"),
    Rule(RuleId.KNS022, E, "pod spec is malformed where the injection must go"),
    Rule(
        RuleId.KNS023, E, "a container mounts the model volume of a template knscale manages more than once"
    ),
    Rule(RuleId.KNS024, E, "pod spec has more containers, volumes or env entries than knscale processes"),
    Rule(RuleId.KNS030, E, "internal error in the mutating webhook: request denied, not guessed"),
    Rule(RuleId.KNS031, W, "internal error in the validating webhook: object not checked"),
    # oci:// model images (translator/injection/oci.py)
    Rule(RuleId.KNS040, W, "OCI model image named by a tag, which is mutable: pin a digest"),
    Rule(RuleId.KNS041, E, "model pull policy is not Always, IfNotPresent or Never"),
    Rule(RuleId.KNS042, E, "model sub-path is not a relative directory"),
    Rule(RuleId.KNS043, W, "model key has no effect with this source or OCI mode"),
    Rule(RuleId.KNS044, E, "OCI model image runs in copy mode but is not on the image allowlist"),
    Rule(
        RuleId.KNS045, INFO, "Knative template: the OCI image volume is added to the pods, not the template"
    ),
    # the shared model cache (translator/injection/cache.py)
    Rule(RuleId.KNS046, E, "model cache claim name is invalid"),
    # ---- KNS1xx: Knative autoscaling annotations ----------------------------------------
    Rule(RuleId.KNS101, E, "annotation value is not of the key's type"),
    Rule(RuleId.KNS102, E, "annotation value is out of range"),
    Rule(RuleId.KNS103, E, "duration must be given in whole seconds"),
    Rule(RuleId.KNS104, E, "unknown Knative autoscaler class"),
    Rule(RuleId.KNS105, E, "metric is not supported by the autoscaler class"),
    Rule(RuleId.KNS106, E, "max-scale is less than min-scale"),
    Rule(RuleId.KNS107, E, "max-scale is outside the cluster's max-scale-limit"),
    Rule(RuleId.KNS108, E, "activation-scale is inconsistent with min-scale and max-scale"),
    Rule(RuleId.KNS109, E, "initial-scale 0 is not allowed by the cluster"),
    Rule(RuleId.KNS110, E, "unknown metric-aggregation-algorithm"),
    Rule(RuleId.KNS111, W, "unknown autoscaling.knative.dev key (Knative ignores it)"),
    Rule(RuleId.KNS112, W, "legacy alias ignored because the kebab-case key is also set"),
    Rule(RuleId.KNS113, INFO, "legacy camelCase alias: prefer the kebab-case key"),
    Rule(RuleId.KNS114, E, "autoscaling annotation on a Service or Configuration's own metadata"),
    Rule(RuleId.KNS115, W, "key has no effect with this autoscaler class"),
    Rule(RuleId.KNS116, W, "autoscaling key where it is not read"),
    Rule(RuleId.KNS117, W, "autoscaling keys on a workload without an autoscaler class"),
    Rule(RuleId.KNS118, W, "model download without a progress deadline"),
    Rule(RuleId.KNS119, W, "target above containerConcurrency is capped"),
    Rule(RuleId.KNS120, W, "effective min-scale exceeds effective max-scale"),
    # from the severity audit: cases Knative admits, split off KNS104, KNS110 and KNS102
    Rule(RuleId.KNS121, W, "bare kpa or hpa is a custom autoscaler class that nothing implements"),
    Rule(RuleId.KNS122, W, "unknown metric-aggregation-algorithm with the class from the cluster default"),
    Rule(RuleId.KNS123, W, "initial-scale does not fit 32 bits: Knative uses the cluster's initial-scale"),
    # silent traps: accepted everywhere, and not what the manifest says
    Rule(RuleId.KNS124, W, "kpa-class workload without a metrics source knscale can read"),
    Rule(RuleId.KNS125, W, "min-scale 0 on a workload that can never reach zero"),
    Rule(RuleId.KNS126, W, "no max-scale: the ScaledObject or HPA scales up to 2147483647"),
    Rule(RuleId.KNS127, W, "knscale's autoscaler class on a workload no PodAutoscaler scales"),
    # knscale's scaling-policy key
    Rule(RuleId.KNS128, E, "unknown knscale scaling policy"),
    Rule(RuleId.KNS129, W, "scaling-policy has no effect with this autoscaler class"),
    # ---- KNS2xx: autoscaler-keda / KEDA translation -------------------------------------
    Rule(RuleId.KNS201, E, "a Prometheus metric needs a prometheus-query"),
    Rule(RuleId.KNS202, E, "prometheus-query template is invalid"),
    Rule(RuleId.KNS203, E, "prometheus-address is not an http(s) URL with a host"),
    Rule(RuleId.KNS204, E, "metric-type must be AverageValue, Utilization or Value"),
    Rule(RuleId.KNS205, E, "metric-type Value is not supported for cpu or memory"),
    Rule(RuleId.KNS206, E, "Utilization is not supported for a Prometheus or other external trigger"),
    Rule(RuleId.KNS207, E, "trigger-prometheus-auth-kind is not a KEDA authentication kind"),
    Rule(RuleId.KNS208, E, "incomplete Prometheus authentication: name and modes go together"),
    Rule(RuleId.KNS209, E, "JSON annotation is malformed or not the expected shape"),
    Rule(RuleId.KNS210, E, "nothing to scale on: no target and no trigger"),
    Rule(RuleId.KNS211, E, "trigger threshold or target must be a number greater than zero"),
    Rule(RuleId.KNS212, E, "the ScaledObject would be rejected by KEDA"),
    Rule(RuleId.KNS213, E, "scaling-modifiers is invalid"),
    Rule(RuleId.KNS214, E, "trigger names must be unique"),
    Rule(RuleId.KNS215, E, "ScaledObject or HPA name longer than 63 characters"),
    Rule(RuleId.KNS216, W, "keys ignored because scaled-object-override is set"),
    Rule(RuleId.KNS217, W, "autoscaler-keda key has no effect unless the class is hpa"),
    Rule(RuleId.KNS218, W, "scaled-object-auto-create is not a boolean and is ignored"),
    Rule(RuleId.KNS219, W, "cpu or memory trigger but a container has no request for it"),
    Rule(RuleId.KNS220, W, "Prometheus trigger keys have no effect for this metric"),
    Rule(RuleId.KNS221, E, "HPA scaling rules would be rejected by the API server"),
    Rule(RuleId.KNS222, E, "a Prometheus metric needs KEDA: a plain HPA scales on cpu or memory only"),
    Rule(RuleId.KNS223, INFO, "bring-your-own ScaledObject: knscale renders none"),
    # ---- KNS9xx: input errors ------------------------------------------------------------
    Rule(RuleId.KNS901, E, "input is not readable or not valid YAML/JSON"),
    Rule(RuleId.KNS902, E, "a document is not a Kubernetes object (mapping with apiVersion and kind)"),
    Rule(RuleId.KNS903, E, "annotations must be a map of strings to strings"),
    Rule(RuleId.KNS904, E, "object is nested deeper than knscale processes"),
)
