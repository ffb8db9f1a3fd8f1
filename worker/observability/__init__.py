"""Prometheus metrics and JSON log lines; imports only `worker.settings`."""
