"""What the worker does at Celery's lifecycle signals: JSON logs, the reaper, metrics.

Every handler is connected by `checkout worker` before the pool forks, so prefork
children inherit their effect (log handlers) and only the main process runs the
`worker_ready` ones (the reaper, the metrics endpoint).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger, worker_ready

from worker.observability.logs import use_escaping, use_json

logger = logging.getLogger("checkout.worker")


def install_logging(*, json_lines: bool) -> None:
    """Once Celery has set its handlers up, switch the worker's logs to JSON, or keep
    Celery's text lines with user text escaped in them."""

    def on_setup(logger: logging.Logger, **_: Any) -> None:
        if json_lines:
            use_json(logger)
        else:
            use_escaping(logger)

    after_setup_logger.connect(on_setup, weak=False)
    after_setup_task_logger.connect(on_setup, weak=False)


def serve_metrics_when_ready(port: int, host: str = "127.0.0.1") -> None:
    """Start the metrics endpoint in the main process once the pool has forked,
    so no pool process holds a copy of the listening socket."""
    from worker.observability.metrics import serve

    def start(**_: object) -> None:
        try:
            serve(port, host)
        except OSError as error:  # port taken: keep applying commands, say so loudly
            logging.getLogger("checkout.metrics").error(
                "metrics endpoint not started on port %d: %s", port, error
            )

    worker_ready.connect(start, weak=False)


@worker_ready.connect
def _start_reaper(sender: Any = None, **_: Any) -> None:
    # In the worker's main process only; prefork children do the applying. `sender`
    # is the worker's consumer, whose dispatcher sends task events.
    from worker.delivery.jids import task_id_of
    from worker.delivery.undeliverable import bury
    from worker.runtime import taking_channel, transport
    from worker.runtime.bootstrap import get_journal, start_reaper
    from worker.runtime.task_states import report_undeliverable

    def undeliverable(raw: bytes | str, queue: str, reason: str, error_type: str) -> None:
        entry_id = bury(get_journal(), raw, queue=queue, reason=reason, error_type=error_type)
        dispatcher = getattr(sender, "event_dispatcher", None)
        report_undeliverable(dispatcher, task_id_of(entry_id), reason)

    transport.on_undeliverable = undeliverable
    if _applies_in_this_process(sender):
        from worker.runtime.bootstrap import get_processor
        from worker.runtime.taking import Taker

        taking_channel.taker = Taker.of(get_processor())
    start_reaper()


def _applies_in_this_process(consumer: Any) -> bool:
    """Whether this process applies the commands it takes off the queues (Celery's solo
    pool): what taking and claiming in one call (`worker.runtime.taking`) needs."""
    from celery.concurrency.solo import TaskPool

    return isinstance(getattr(consumer, "pool", None), TaskPool)
