"""The controller's edges: clock, informers and their cache, guarded writes, the work queue,
events, leader election and the /metrics exporter. No reconcile logic lives here."""
