"""Trace-driven autoscaling simulator: loaders, workloads, the event model, baselines, oracle, reports."""
