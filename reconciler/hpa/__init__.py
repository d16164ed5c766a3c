"""HPA-class revisions: the ScaledObject (autoscaler-keda compatible), the ServerlessService in
Serve mode and the PodAutoscaler's status — build, diff, write if different."""
