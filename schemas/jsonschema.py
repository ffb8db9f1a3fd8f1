"""JSON Schema (draft 2020-12) of the command and result-event contracts, from the models.

    python -m schemas.jsonschema --write   # regenerate schemas/json/*.schema.json
    python -m schemas.jsonschema --check   # exit 1, naming each file that is stale
    python -m schemas.jsonschema events    # print one schema

pydantic writes the schemas; a few steps below make them say what the models enforce
in code rather than in their types:

- Fields inside `updates` may be omitted but not `null` (`SessionUpdates._no_nulls`),
  so their `null` alternatives and `default: null` are removed.
- The OpenAPI `discriminator` keyword is dropped: it is not JSON Schema, strict
  validators refuse it, and the `type` constant of each `oneOf` branch already selects it.
- An event's `session` is the `CheckoutSession` snapshot (typed `dict` in `ResultEvent`),
  and the event's `type` says which fields it carries: `session` for `session.*`,
  `error` with a rejection code for `command.rejected` and with a dead-letter code for
  `command.dead_lettered`.

What no schema here expresses: the cart limit (line item amounts must add up to at most
`MAX_CART`), and that money must be written as an integer (`12.0` is an integer to JSON
Schema but rejected by the models).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, get_args

from schemas.commands import COMMAND_ADAPTER, SessionUpdates
from schemas.events import DeadLetterCode, ErrorCode, EventType, ResultEvent
from schemas.payments import DEFAULT_PAYMENT_DISPLAY_FIELDS
from schemas.session import CheckoutSession

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = Path(__file__).resolve().parent / "json"
WRITE_COMMAND = "python -m schemas.jsonschema --write"


def commands_schema() -> dict[str, Any]:
    """Every command a producer may enqueue, one JSON object each."""
    generated = COMMAND_ADAPTER.json_schema(mode="validation")
    generated.pop("discriminator", None)
    updates = generated["$defs"][SessionUpdates.__name__]
    for name, field in updates["properties"].items():
        updates["properties"][name] = _not_null(field)
    return {
        "$schema": DRAFT,
        "$id": "urn:checkout-pipeline:schema:commands",
        "title": "CheckoutCommand",
        "description": (
            "One checkout command, as a producer enqueues it: a JSON object discriminated by "
            "`type`. `command_id` (1-255 characters) is the idempotency key. Unknown keys are "
            "refused at the top level and inside `updates`; the session data inside (line "
            "items, buyer, addresses, payment instruments) keeps unknown attributes. Fields "
            "inside `updates` may be omitted but not null. Money is integer minor units."
        ),
        **generated,
    }


def events_schema() -> dict[str, Any]:
    """Every result event the workers publish, one JSON object per stream entry."""
    generated = ResultEvent.model_json_schema(mode="serialization")
    session = CheckoutSession.model_json_schema(mode="serialization")
    definitions = generated.setdefault("$defs", {})
    for name, definition in {
        **session.pop("$defs", {}),
        CheckoutSession.__name__: session,
    }.items():
        if definitions.setdefault(name, definition) != definition:
            raise ValueError(f"two different definitions named {name}")
    session_ref = {"$ref": f"#/$defs/{CheckoutSession.__name__}"}
    generated["properties"]["session"]["anyOf"] = [session_ref, {"type": "null"}]
    session_types = [kind for kind in get_args(EventType) if kind.startswith("session.")]
    generated["allOf"] = [
        _when_type(session_types, required=["session"], properties={"session": session_ref}),
        _when_type(["command.rejected"], **_error_with(get_args(ErrorCode))),
        _when_type(["command.dead_lettered"], **_error_with(get_args(DeadLetterCode))),
    ]
    generated.pop("title", None)
    generated.pop("description", None)
    return {
        "$schema": DRAFT,
        "$id": "urn:checkout-pipeline:schema:events",
        "title": "CheckoutResultEvent",
        "description": (
            "One result event per command, the field `event` of an entry in the events "
            "stream. `event_id` is derived from the command's id and content: every "
            "delivery of a command yields the same event, so consumers deduplicate on it. "
            "`session.*` events carry the session snapshot and `previous_status` (null on "
            "`session.created`). In the snapshot, a payment instrument keeps only its "
            "display fields (CHECKOUT_PAYMENT_DISPLAY_FIELDS, by default "
            f"{', '.join(DEFAULT_PAYMENT_DISPLAY_FIELDS)}; `name.*` keeps all under the key), "
            "at any depth: every other value reads `[redacted]`. "
            "`command.rejected` and `command.dead_lettered` carry `error` instead."
        ),
        **generated,
    }


SCHEMAS = {"commands": commands_schema, "events": events_schema}


def render(schema: dict[str, Any]) -> str:
    """The schema as committed: sorted keys, 2-space indent, a trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def path_of(name: str) -> Path:
    return SCHEMA_DIR / f"{name}.schema.json"


def stale_files() -> list[Path]:
    """The committed schema files that are missing or differ from the models."""
    return [
        path_of(name)
        for name, build in SCHEMAS.items()
        if not path_of(name).is_file() or path_of(name).read_text("utf-8") != render(build())
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schemas.jsonschema", description=__doc__.splitlines()[0]
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("name", nargs="?", choices=sorted(SCHEMAS), help="print this schema")
    action.add_argument("--write", action="store_true", help=f"write {SCHEMA_DIR.name}/*.json")
    action.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    if args.name:
        sys.stdout.write(render(SCHEMAS[args.name]()))
        return 0
    if args.write:
        SCHEMA_DIR.mkdir(exist_ok=True)
        for name, build in SCHEMAS.items():
            path_of(name).write_text(render(build()), "utf-8")
            print(f"wrote {_shown(path_of(name))}")
        return 0
    stale = stale_files()
    for path in stale:
        print(f"{_shown(path)} is stale: run `{WRITE_COMMAND}`", file=sys.stderr)
    return 1 if stale else 0


def _not_null(field: dict[str, Any]) -> dict[str, Any]:
    """`field` without its `null` alternative and its `null` default."""
    field = {key: value for key, value in field.items() if key != "default"}
    options = [option for option in field.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        return {**field, **options[0]}
    return {**field, "anyOf": options} if options else field


def _when_type(types: list[str], **then: Any) -> dict[str, Any]:
    return {
        "if": {"properties": {"type": {"enum": types}}, "required": ["type"]},
        "then": then,
    }


def _error_with(codes: tuple[str, ...]) -> dict[str, Any]:
    error = {"type": "object", "properties": {"code": {"enum": list(codes)}}}
    return {"required": ["error"], "properties": {"error": error}}


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
