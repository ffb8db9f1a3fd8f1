"""Local services for demos, tests and benchmarks: redis-server, a moto server, workers."""
