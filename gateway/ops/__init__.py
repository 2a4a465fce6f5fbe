"""Operating the daemon: health and metrics, hot reload, reports, replay, rule suites."""
