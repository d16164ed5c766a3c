"""HPA-class revisions: what KEDA is given (ScaledObject, or a plain HorizontalPodAutoscaler),
with autoscaler-keda's semantics, and the checks KEDA's admission would make."""
