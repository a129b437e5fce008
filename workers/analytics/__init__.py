"""Analytics over verified events: refresh the materialized views, read the metrics of a
project, write them as CSV. The SQL lives in sql/85x_analytics*.sql (docs/analytics.md)."""

from workers.analytics.export import METRIC_COLUMNS, csv_cell, metric_csv, write_csv
from workers.analytics.metrics import RefreshedView, project_metrics, refresh

__all__ = ["METRIC_COLUMNS", "RefreshedView", "csv_cell", "metric_csv", "project_metrics",
           "refresh", "write_csv"]
