"""The bundled controller, in layers (import-linter keeps them; lowest last):

- `controller`: wires informers, the work queue, leader election and the two loops below.
- `scaling` (the KPA loop for plain Deployments/StatefulSets) and `hpa` (ScaledObject, SKS and
  PodAutoscaler status for HPA-class revisions): the reconcile logic, talking to the API only
  through `runtime`'s ports.
- `runtime` (clock, informers, cache, writes, work queue, events, leader election, exporter)
  and `metrics` (the collectors and the per-revision metric store): the I/O edges.
- `kpa`: pure — Knative's decider, windows, the scaler step and the policies; data and `now` in,
  decisions out, no clock, threads or I/O. The simulator runs the same objects.
"""
