"""The checkout worker, one folder per concern; imports point one way (down this list).

- `domain/`: the seed's rules, pure (no clock, no I/O): totals, messages, statuses,
  transitions, JavaScript arithmetic and time, the applied-command ledger.
- `service/`: applying one command: load -> decide -> conditional save -> result event.
- `dynamodb/`, `delivery/`, `streams/`: the adapters (DynamoDB; the Redis delivery
  protocol; the result-event stream). Only `dynamodb/` imports boto3 and botocore.
- `observability/`: metrics and log lines.
- `runtime/`: Celery and kombu, and the wiring of everything above, once per process.
- `errors.py`, `settings.py`, `redis_client.py`: the kernel every layer may use.

`tests/unit/test_architecture.py` enforces the arrows.
"""
