"""Model injection: the model keys read into a request (`reader`, `source`, `request`), the
checks behind a plan (`checks`), the plan for a pod (`plan`, with the per-configuration parts in
`fixed`), and template mode for the workloads whose pods the webhook never sees (`template`).
knscale's names for what it adds live in `common`."""
