"""Model injection: the plan for a pod (init container, volume, mounts, marker), the checks
behind it, and template mode for the workloads whose pods the webhook never sees."""
