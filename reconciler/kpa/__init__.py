"""Pure KPA: bucketed windows, the faithful decider, the KPA reconciler's scale step, and the
`Policy` objects (KPA and knscale's own) that the reconciler and the simulator both run.

No clock, threads, network or Kubernetes here (an import-linter contract): every function takes
its data and `now` as arguments.
"""
