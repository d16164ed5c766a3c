"""The KPA scaling loop for plain Deployments/StatefulSets: metric sources → policy → the
`scale` subresource."""
