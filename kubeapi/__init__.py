"""The one Kubernetes adapter: the only package that imports `kubernetes`."""
