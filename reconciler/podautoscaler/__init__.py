"""knscale's autoscaler class (``autoscaling.knscale.dev``) for Knative PodAutoscalers: the pure
reconcile core (``core``), policy selection, the activator probe and the controller's loop."""
