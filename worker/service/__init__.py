"""Applying one command through the store port; imports `schemas`, `worker.domain`
and `worker.errors`."""
