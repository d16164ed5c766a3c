"""Metric sources behind one interface (``Collector``): queue-proxy, Prometheus, static/file."""

from reconciler.metrics.base import (
    Collection,
    CollectionStatus,
    Collector,
    CollectTarget,
    PodInfo,
    RevisionKey,
)
from reconciler.metrics.prometheus import PrometheusCollector
from reconciler.metrics.queue_proxy import QueueProxyCollector
from reconciler.metrics.static import FileCollector, StaticCollector

__all__ = [
    "CollectTarget",
    "Collection",
    "CollectionStatus",
    "Collector",
    "FileCollector",
    "PodInfo",
    "PrometheusCollector",
    "QueueProxyCollector",
    "RevisionKey",
    "StaticCollector",
]
