"""Properties: lint never crashes on arbitrary input, and translation is deterministic and pure."""

from __future__ import annotations

import copy
import io
from functools import partial
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from knscale import positions, yamlio
from knscale.commands.translate_cmd import translate_object
from translator.annotations import table as A
from translator.config.knscale import KnscaleConfig
from translator.core.rules import RULES
from translator.lint import lint_document

CONFIG = KnscaleConfig()
_KEYS = [
    *sorted({k for a in A.TABLE for k in a.keys}),
    A.AUTOSCALING_PREFIX + "minscale",
    "autoscaling.knative.io/target",
    "knscale.dev/lint-ignore",
]
_GOOD_VALUES = [
    "0",
    "1",
    "5",
    "-1",
    "0.5",
    "60s",
    "1h",
    "true",
    "false",
    "cpu",
    "memory",
    "rps",
    "concurrency",
]
_GOOD_VALUES += [
    "hpa.autoscaling.knative.dev",
    "kpa.autoscaling.knative.dev",
    "AverageValue",
    "Utilization",
    "KNS111",
]
_GOOD_VALUES += [
    '[{"type": "cpu", "metadata": {}}]',
    '{"formula": "a", "target": "1"}',
    "{{.revisionName}}",
    "{",
]
_value = st.one_of(
    st.sampled_from(_GOOD_VALUES),
    st.text(max_size=20),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=2),
)
_annotations = st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=12)), _value, max_size=8)
_kind = st.sampled_from(
    [
        ("serving.knative.dev/v1", "Service"),
        ("serving.knative.dev/v1", "Configuration"),
        ("serving.knative.dev/v1", "Revision"),
        ("autoscaling.internal.knative.dev/v1alpha1", "PodAutoscaler"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("v1", "Pod"),
    ]
)
_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def k8s_objects(draw: st.DrawFn) -> dict[str, Any]:
    api_version, kind = draw(_kind)
    template: dict[str, Any] = {
        "metadata": {
            "annotations": draw(_annotations),
            "name": draw(st.one_of(st.none(), st.text(max_size=70))),
        },
        "spec": draw(
            st.one_of(
                _junk,
                st.fixed_dictionaries(
                    {
                        "containerConcurrency": st.one_of(st.integers(-5, 100), st.text(max_size=3)),
                        "containers": st.lists(
                            st.fixed_dictionaries({"name": st.text(max_size=5), "resources": _junk}),
                            max_size=2,
                        ),
                    }
                ),
            )
        ),
    }
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": draw(st.text(max_size=70)),
            "namespace": draw(st.one_of(st.none(), st.text(max_size=10))),
            "annotations": draw(st.one_of(_annotations, _junk)),
            "ownerReferences": draw(st.one_of(st.none(), _junk)),
        },
        "spec": draw(st.one_of(_junk, st.just({"template": template, "scaleTargetRef": {"name": "x"}}))),
    }


def _lint_text(text: str) -> None:
    for doc in yamlio.read_stream("gen.yaml", io.StringIO(text)):
        if isinstance(doc, yamlio.ReadError):
            assert doc.message
            continue
        for item in lint_document(
            doc.data,
            CONFIG,
            source=doc.source,
            position=partial(positions.locate, doc.node),
            duplicates=partial(positions.duplicate_keys, doc.node),
        ):
            assert item.finding.rule_id in RULES
            assert item.line >= 1 and item.column >= 1


@given(st.text(max_size=300))
def test_lint_never_crashes_on_arbitrary_text(text: str) -> None:
    _lint_text(text)


@given(st.lists(st.one_of(k8s_objects(), _junk), min_size=1, max_size=3))
def test_lint_never_crashes_on_arbitrary_objects(docs: list[Any]) -> None:
    _lint_text(yaml.safe_dump_all(docs, sort_keys=False))


@given(k8s_objects(), st.one_of(st.none(), st.text(min_size=1, max_size=10)), st.booleans())
def test_translate_is_deterministic_and_does_not_touch_its_input(
    obj: dict[str, Any], revision: str | None, no_keda: bool
) -> None:
    before = copy.deepcopy(obj)
    first = translate_object(obj, CONFIG, revision=revision, no_keda=no_keda)
    second = translate_object(copy.deepcopy(obj), CONFIG, revision=revision, no_keda=no_keda)
    assert obj == before
    assert first[0] == second[0]
    assert [f.to_dict() for f in first[1]] == [f.to_dict() for f in second[1]]
    for doc in first[0]:
        assert yaml.safe_load(yaml.safe_dump(doc)) == doc
