"""Everything Celery and kombu (the only place in `worker` that imports them): the app,
the task bodies, signal hooks, the consumer and transport subclasses, and the wiring."""
