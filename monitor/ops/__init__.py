"""Running the worker in production: metrics, health and structured logs."""

from monitor.ops.health import HealthCheck, HealthReport
from monitor.ops.logging import setup_logging
from monitor.ops.metrics import Metrics
from monitor.ops.server import MetricsServer, start_metrics_server

__all__ = ["HealthCheck", "HealthReport", "Metrics", "MetricsServer", "setup_logging", "start_metrics_server"]
