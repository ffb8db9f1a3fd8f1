"""`checkout bulk-update`'s parts: the patch, the selection of sessions, the commands.

The selection is a parallel Scan of the sessions table (strongly consistent), with
DynamoDB filtering on status, currency and `updated_at`, and "has a line item with
this id" checked here (a list of maps cannot be filtered by a member's field). It
reads the seed's layout and the pipeline's alike: both keep these as top-level
attributes. The worker re-checks every session when it applies the update, so a
session that changed or closed since the scan is an ordinary rejection.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from pydantic import ValidationError

from schemas.commands import SessionUpdates, describe_validation_error
from schemas.ids import escaped
from schemas.session import CheckoutStatus
from worker.domain.js import js_iso

WHERE_KEYS = ("status", "currency", "updated_before", "updated_after", "line_item")
TIME_KEYS = ("updated_before", "updated_after")
MAX_COMMAND_ID = 255


class SelectionError(ValueError):
    """A --set, --patch, --where or --ids the command cannot use; nothing was enqueued."""


# ─── The patch ───


def parse_set(assignments: Iterable[str]) -> dict[str, Any]:
    """`field=value` pairs; the value is JSON when it parses, else the plain string."""
    updates: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        if not sep or not name:
            raise SelectionError(f"--set {assignment!r}: expected field=value")
        try:
            updates[name] = json.loads(raw)
        except json.JSONDecodeError:
            updates[name] = raw
    return updates


def load_patch(path: str) -> dict[str, Any]:
    """A --patch file: a JSON object with an `updates` object."""
    try:
        with open(path, encoding="utf-8") as source:
            document = json.load(source)
    except OSError as error:
        raise SelectionError(f"--patch {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise SelectionError(f"--patch {path}: {not_utf8(error)}") from None
    except json.JSONDecodeError as error:
        raise SelectionError(f"--patch {path}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("updates"), dict):
        raise SelectionError(f'--patch {path}: expected {{"updates": {{...}}}}')
    return document["updates"]


def validate_updates(updates: dict[str, Any]) -> dict[str, Any]:
    """The updates as `update_session` takes them, or `SelectionError` saying why not."""
    if not updates:
        raise SelectionError("the patch is empty: give --set field=value or --patch FILE")
    try:
        model = SessionUpdates.model_validate(updates)
    except ValidationError as error:
        raise SelectionError(
            f"updates: {describe_validation_error(error, model=SessionUpdates)}"
        ) from None
    return model.model_dump(mode="json", exclude_unset=True)


# ─── The selection ───


@dataclass(frozen=True)
class Where:
    """The --where conditions, all of which a session must meet."""

    status: str | None = None
    currency: str | None = None
    updated_before: str | None = None  # as the seed stamps it: 2026-11-01T00:00:00.000Z
    line_item: str | None = None
    updated_after: str | None = None  # the same format; added later, so last

    def canonical(self) -> str:
        """The selection as text, for the default run id. A key added later is left out
        while unset, so a selection written before it keeps its run id (and resumes)."""
        values = dict(self.__dict__)
        if values["updated_after"] is None:
            del values["updated_after"]
        return json.dumps(values, sort_keys=True)

    def matches_line_items(self, line_items: Any) -> bool:
        if self.line_item is None:
            return True
        items = line_items if isinstance(line_items, list) else []
        return any(isinstance(i, dict) and i.get("id") == self.line_item for i in items)


def parse_where(conditions: Iterable[str]) -> Where:
    """`key=value` conditions: status=, currency=, updated_before=, updated_after=,
    line_item=. The times are ISO 8601 instants (UTC if no offset), both bounds exclusive."""
    values: dict[str, str] = {}
    for condition in conditions:
        key, sep, value = condition.partition("=")
        if not sep or key not in WHERE_KEYS or not value:
            raise SelectionError(
                f"--where {condition!r}: expected one of {', '.join(k + '=' for k in WHERE_KEYS)}"
                " with a value"
            )
        values[key] = value
    status = values.get("status")
    if status is not None and status not in get_args(CheckoutStatus):
        raise SelectionError(
            f"--where status={escaped(status)}: not a checkout status; expected one of "
            f"{', '.join(get_args(CheckoutStatus))}"
        )
    for key in TIME_KEYS:
        if key in values:
            values[key] = _seed_timestamp(key, values[key])
    return Where(**values)


def _seed_timestamp(key: str, text: str) -> str:
    """An ISO 8601 instant as the seed writes `updated_at`, so strings compare as times."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SelectionError(f"--where {key}={text}: not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return js_iso(moment.astimezone(UTC))


def scan_request(table: str, where: Where, segment: int, segments: int) -> dict[str, Any]:
    """One segment's Scan: DynamoDB filters what it can, this process the rest."""
    names = {"#id": "sessionId"}
    values: dict[str, Any] = {}
    filters = []
    for attribute, placeholder, value, op in (
        ("status", "status", where.status, "="),
        ("currency", "currency", where.currency, "="),
        ("updated_at", "updated_at", where.updated_before, "<"),
        ("updated_at", "updated_after", where.updated_after, ">"),
    ):
        if value is not None:
            names[f"#{attribute}"] = attribute
            values[f":{placeholder}"] = {"S": value}
            filters.append(f"#{attribute} {op} :{placeholder}")
    projection = "#id"
    if where.line_item is not None:
        names["#li"] = "line_items"
        projection += ", #li"
    request: dict[str, Any] = {
        "TableName": table,
        "ConsistentRead": True,
        "Segment": segment,
        "TotalSegments": segments,
        "ProjectionExpression": projection,
        "ExpressionAttributeNames": names,
    }
    if filters:
        request["FilterExpression"] = " AND ".join(filters)
        request["ExpressionAttributeValues"] = values
    return request


def scan_sessions(client: Any, table: str, where: Where, *, segments: int = 4) -> Iterator[str]:
    """Session ids matching `where`, from `segments` parallel Scans (any order)."""
    items = parallel_scan(
        client, lambda segment: scan_request(table, where, segment, segments), segments
    )
    return (session_id for item in items if (session_id := _matching_id(item, where)))


def parallel_scan(
    client: Any, request_for: Callable[[int], dict[str, Any]], segments: int
) -> Iterator[dict[str, Any]]:
    """The items of `segments` Scans in parallel threads, segment n's request being
    `request_for(n)` (any order). Closing the iterator early stops the scans."""
    pages: queue.Queue[list[dict[str, Any]] | BaseException | None] = queue.Queue(
        maxsize=segments * 2
    )
    stop = threading.Event()

    def scan(segment: int) -> None:
        try:
            request = request_for(segment)
            while not stop.is_set():
                page = client.scan(**request)
                pages.put(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except BaseException as error:  # handed to the reading thread, raised there
            pages.put(error)
        finally:
            pages.put(None)

    for segment in range(segments):
        threading.Thread(target=scan, args=(segment,), daemon=True).start()
    running = segments
    try:
        while running:
            page = pages.get()
            if page is None:
                running -= 1
            elif isinstance(page, BaseException):
                raise page
            else:
                yield from page
    finally:
        # A reader that stopped early (--limit, an error): each thread finishes the page
        # in hand and exits, instead of staying blocked on a full queue.
        stop.set()
        while running:
            if pages.get() is None:
                running -= 1


def _matching_id(item: dict[str, Any], where: Where) -> str:
    from worker.dynamodb.items import from_item

    if where.line_item is not None and not where.matches_line_items(
        from_item({"li": item.get("line_items", {"NULL": True})})["li"]
    ):
        return ""
    return item["sessionId"]["S"]


def read_ids(path: str) -> Iterator[str]:
    """Session ids from a file, one a line; blank lines and `#` comments skipped."""
    try:
        with open(path, encoding="utf-8") as source:
            for line in source:
                session_id = line.strip()
                if session_id and not session_id.startswith("#"):
                    yield session_id
    except OSError as error:
        raise SelectionError(f"--ids {path}: {error.strerror}") from None


def ids_digest(path: str) -> str:
    """The digest of an --ids file, which is checked to be UTF-8 text on the way: `read_ids`
    reads it only as the run goes, too late to refuse it in one line."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as source:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except OSError as error:
        raise SelectionError(f"--ids {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise SelectionError(f"--ids {path}: {not_utf8(error)}") from None
    return digest.hexdigest()


def not_utf8(error: UnicodeDecodeError) -> str:
    return f"not UTF-8 text (byte 0x{error.object[error.start]:02x})"


# ─── The commands ───


def bulk_run_id(updates: dict[str, Any], selection: str) -> str:
    """The default run id: the same patch on the same selection is the same run."""
    text = json.dumps({"updates": updates, "selection": selection}, sort_keys=True)
    return f"bulk-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


def command_id(run_id: str, session_id: str) -> str:
    """Derived from the run and the session, so a rerun of the run is a no-op for it."""
    candidate = f"{run_id}:{session_id}"
    if len(candidate) <= MAX_COMMAND_ID:
        return candidate
    return f"{run_id}:{hashlib.sha256(session_id.encode()).hexdigest()}"


def update_commands(
    session_ids: Iterable[str], updates: dict[str, Any], run_id: str
) -> Iterator[dict[str, Any]]:
    for session_id in session_ids:
        yield {
            "type": "update_session",
            "command_id": command_id(run_id, session_id),
            "session_id": session_id,
            "updates": updates,
        }
