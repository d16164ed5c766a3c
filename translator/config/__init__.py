"""Cluster facts the rules need: knscale's own settings (`knscale`) and Knative's
config-autoscaler / config-autoscaler-keda ConfigMaps (`autoscaler`)."""
