"""Configuration from the environment, read once per process.

boto3 reads the usual `AWS_*` variables (region, credentials) itself.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY_SECONDS = 24 * 60 * 60


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHECKOUT_", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Unset means real AWS; set it to a moto server or DynamoDB Local.
    dynamodb_endpoint_url: str | None = None
    sessions_table: str = "checkout_sessions"
    commands_table: str = "checkout_commands"
    events_stream: str = "checkout:events"
    # Approximate cap on stream entries, so an unread stream cannot exhaust Redis memory.
    events_maxlen: int = Field(default=1_000_000, ge=1000)
    commands_queue: str = "checkout.commands"
    session_ttl_seconds: int = Field(default=DAY_SECONDS, ge=60)
    # Command records outlive the session write they commit with, so a redelivery that
    # arrives late (a long retry, a replay) still finds the first outcome.
    command_ttl_seconds: int = Field(default=7 * DAY_SECONDS, ge=DAY_SECONDS)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
