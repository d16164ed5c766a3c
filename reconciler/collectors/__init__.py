"""Metric sources behind one interface (``Collector``): queue-proxy, Prometheus, static/file."""

from reconciler.collectors.base import (
    Collection,
    CollectionStatus,
    Collector,
    CollectTarget,
    PodInfo,
    RevisionKey,
)
from reconciler.collectors.prometheus import PrometheusCollector
from reconciler.collectors.queue_proxy import QueueProxyCollector
from reconciler.collectors.static import FileCollector, StaticCollector

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
