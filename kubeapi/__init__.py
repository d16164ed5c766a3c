"""The one Kubernetes adapter: the only package that imports `kubernetes`.

- `resources`: `Resource` (a REST collection) and the collections knscale touches.
- `errors`: one error tree (`ApiError` → `NotFound`, `Conflict` → `AlreadyExists`, `Gone`,
  `Forbidden`, `Invalid`, …), mapped from the HTTP status and the `metav1.Status` body.
- `client`: the `KubeApi` protocol every caller speaks (plain dicts in and out) and
  `KubernetesApi`, its implementation over the official client's `ApiClient`.
- `apply`: create-or-replace and other small verbs built on `KubeApi`.
- `testing`: the in-memory fake API every test uses.

Nothing here imports knscale's other packages: webhook, reconciler and the CLI depend on this
package, never the other way round (import-linter contracts in pyproject.toml).
"""
