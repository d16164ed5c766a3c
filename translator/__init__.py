"""Pure translation of annotations into validated settings, injection plans and manifests.

Nothing in this package performs I/O, reads the clock or imports a Kubernetes client; an
import-linter contract (pyproject.toml) keeps it so. Its subpackages are layers, each
importing only those below it (another contract):

- `core`: findings, rule ids, value parsers, name checks, the object/site model;
- `config`: knscale's settings and Knative's config-autoscaler / config-autoscaler-keda;
- `annotations`: the declarative table of every key, and the model-injection keys;
- `keda`: HPA-class revisions → ScaledObject / HorizontalPodAutoscaler, KEDA's own checks;
- `autoscaling` (validation of the autoscaling keys, KPA settings) and `injection` (model
  injection plans), side by side;
- `validate` (one object → findings) and, on top, `lint` (one parsed document).

Entry points: `validate.validate_object` (one object → findings), `lint.lint_document`,
`injection.plan.plan_injection` and `injection.template.plan_template_injection`,
`keda.render.render_scaled_object`, `keda.hpa.render_hpa`, `keda.revision.hpa_revision`,
`autoscaling.kpa.resolve_kpa_settings`, and the settings `config.knscale.KnscaleConfig`.
"""
