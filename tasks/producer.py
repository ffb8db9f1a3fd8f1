"""Enqueueing checkout commands: the API producers call.

Commands are validated here, before they reach the queue, so a producer learns
about a bad command at once and with the field that is wrong. Producers need
Celery and the schemas only: no AWS SDK, no worker code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from schemas.commands import Command, describe_validation_error, parse_command
from worker.celery_app import APPLY_COMMAND_TASK, create_app
from worker.settings import Settings, get_settings

CommandInput = Command | Mapping[str, Any] | str


class InvalidCommand(ValueError):
    """Raised when a command does not validate; nothing has been enqueued for it."""


class EnqueueFailed(RuntimeError):
    """Raised when the broker fails mid-way; the first `sent` commands were enqueued."""

    def __init__(self, sent: int, cause: Exception) -> None:
        super().__init__(f"broker failed after {sent} commands were enqueued: {cause}")
        self.sent = sent


def prepare(command: CommandInput) -> dict[str, Any]:
    """Validate `command` and return the message body a worker receives."""
    if not isinstance(command, BaseModel):
        try:
            command = parse_command(command)
        except ValidationError as error:
            raise InvalidCommand(describe_validation_error(error)) from None
    # exclude_unset keeps the seed's partial-update meaning: absent is not null.
    return command.model_dump(mode="json", exclude_unset=True)


class CommandProducer:
    """Sends validated commands to the workers' queue."""

    def __init__(self, app: Celery, *, queue: str) -> None:
        self.app = app
        self.queue = queue

    @classmethod
    def from_settings(cls, settings: Settings) -> CommandProducer:
        return cls(create_app(settings), queue=settings.commands_queue)

    def enqueue(self, command: CommandInput) -> str:
        """Validate and enqueue one command; returns its `command_id`."""
        body = prepare(command)
        self.send_prepared([body])
        return body["command_id"]

    def enqueue_many(self, commands: Iterable[CommandInput]) -> int:
        """Validate every command, then enqueue them all on one broker connection.

        Raises `InvalidCommand` naming the first bad command's position, before
        anything is enqueued.
        """
        bodies = []
        for position, command in enumerate(commands):
            try:
                bodies.append(prepare(command))
            except InvalidCommand as error:
                raise InvalidCommand(f"command {position}: {error}") from None
        return self.send_prepared(bodies)

    def send_prepared(self, bodies: Iterable[dict[str, Any]]) -> int:
        """Enqueue bodies that `prepare` returned, reusing one producer connection.

        Raises `EnqueueFailed` saying how many were enqueued when the broker fails
        (after Celery's own publish retries).
        """
        count = 0
        try:
            with self.app.producer_or_acquire() as producer:
                for body in bodies:
                    self.app.send_task(
                        APPLY_COMMAND_TASK, args=[body], queue=self.queue, producer=producer
                    )
                    count += 1
        except (OperationalError, RedisError, OSError) as error:
            raise EnqueueFailed(count, error) from error
        return count


@lru_cache(maxsize=1)
def default_producer() -> CommandProducer:
    """The producer configured from the environment (`CHECKOUT_*`)."""
    return CommandProducer.from_settings(get_settings())


def enqueue(command: CommandInput) -> str:
    """Validate and enqueue one command with the default producer; returns its id."""
    return default_producer().enqueue(command)


def enqueue_many(commands: Iterable[CommandInput]) -> int:
    """Validate all commands, then enqueue them with the default producer."""
    return default_producer().enqueue_many(commands)
