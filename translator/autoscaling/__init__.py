"""Knative autoscaling keys: their validation (`checks`) and the resolved KPA settings (`kpa`)."""
