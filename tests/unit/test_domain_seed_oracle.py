"""Differential test: worker.domain.rules against the seed's own TypeScript rules, run by node.

tests/seed/extract.mjs cuts recalculateTotals, buildMessages, determineStatus,
getAllowedTransitions and transition()'s guard out of the verbatim seed copy and
evaluates them. Every generated session goes to one node process; Python must give
the same totals, messages, status and transition errors, down to key order.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections import Counter
from itertools import product
from pathlib import Path
from typing import Any, get_args

import pytest

from schemas import CheckoutSession, CheckoutStatus
from worker.domain.rules import (
    allowed_transitions,
    build_messages,
    check_transition,
    determine_status,
    recalculate_totals,
)
from worker.errors import InvalidTransition

pytestmark = pytest.mark.unit

SEED_DIR = Path(__file__).resolve().parents[1] / "seed"
SEED = SEED_DIR / "checkout_session_store.ts"
EXTRACT = SEED_DIR / "extract.mjs"

CASES = 3000
# Every status the schema knows, so a new one is checked against the seed too.
STATUSES = get_args(CheckoutStatus)
TRANSITION_PAIRS = [list(pair) for pair in product(STATUSES, repeat=2)]
LINE_ITEM_TYPES = ("product", "service", "discount", "shipping", "other")
STAMP = "2024-05-01T12:00:00.000Z"
ABSENT = object()

BUYERS = (
    ABSENT,
    None,
    {},
    {"email": ""},
    {"email": None},
    {"email": "buyer@example.com"},
    {"email": "ada@example.com", "first_name": "Ada"},
)
ADDRESSES = (ABSENT, None, {}, {"line1": "1 Main St", "city": "Springfield", "country": "US"})
PAYMENTS = ([], [{}], [{"type": "card", "id": "pi_1"}], [{"id": "a"}, {"id": "b"}])
SEVERITIES = (ABSENT, None, "requires_buyer_input", "recoverable", "unrecoverable")


# ─── Case generation ───


def random_amount(rng: random.Random) -> int:
    roll = rng.randrange(7)
    if roll == 0:
        return 0
    if roll == 1:
        return rng.randint(-500, 500)
    if roll == 2:
        return rng.randint(1, 100_000)
    if roll == 3:  # amount * 0.005 ends in .5 (0.08 * an integer never does)
        return 200 * rng.randint(-5 * 10**9, 5 * 10**9) + 100
    if roll == 4:
        return rng.randint(-(10**12), 10**12)
    if roll == 5:  # 8% tax just either side of a half cent
        return 25 * rng.randint(-(10**6), 10**6) + rng.choice((6, 7, 19))
    return rng.choice((1, 99, 100, -100, 1250, 6250, 10**12, -(10**12)))


def random_line_item(rng: random.Random, index: int, item_type: str | None = None) -> dict:
    item: dict[str, Any] = {
        "id": f"li_{index}",
        "type": item_type or rng.choice(LINE_ITEM_TYPES),
        "total_amount": random_amount(rng),
    }
    if rng.random() < 0.1:
        item["type"] = rng.choice(("Product", "", "gift_card"))  # not counted by the seed
    if rng.random() < 0.3:
        item["name"] = "Widget"
        item["quantity"] = rng.randint(1, 5)
    return item


def random_line_items(rng: random.Random) -> list[dict]:
    if rng.random() < 0.25:  # one product whose fee is exactly a half
        halves = [random_line_item(rng, 0, rng.choice(("product", "service")))]
        halves[0]["total_amount"] = 200 * rng.randint(-(10**9), 5 * 10**9) + 100
        others = ("discount", "shipping", "other")
        return halves + [random_line_item(rng, i, rng.choice(others)) for i in range(1, 3)]
    return [random_line_item(rng, i) for i in range(rng.choice((0, 0, 1, 2, 3, 6)))]


def random_message(rng: random.Random) -> dict:
    message = {"type": "warning", "code": "out_of_stock", "message": "An item is unavailable."}
    severity = rng.choice(SEVERITIES)
    if severity is not ABSENT:
        message["severity"] = severity
    return message


def random_session(rng: random.Random, index: int) -> dict:
    currency = rng.choice(("USD", "EUR", "JPY"))
    session: dict[str, Any] = {
        "id": f"cs_{index}",
        "status": rng.choice(STATUSES),
        "currency": currency,
        "line_items": random_line_items(rng),
        "totals": zero_totals(currency),
        "payment_instruments": rng.choice(PAYMENTS),
        "messages": [random_message(rng) for _ in range(rng.choice((0, 0, 0, 1, 2)))],
        "created_at": STAMP,
        "updated_at": STAMP,
    }
    for key, choices in (("buyer", BUYERS), ("shipping_address", ADDRESSES)):
        value = rng.choice(choices)
        if value is not ABSENT:
            session[key] = value
    return session


def zero_totals(currency: str) -> dict:
    keys = ("subtotal", "tax", "shipping", "discount", "fee", "total")
    return {**dict.fromkeys(keys, 0), "currency": currency}


# ─── Running both sides ───


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    rng = random.Random(20240501)
    return [random_session(rng, index) for index in range(CASES)]


@pytest.fixture(scope="module")
def seed(cases: list[dict]) -> dict:
    payload = {"sessions": cases, "statuses": list(STATUSES), "transitions": TRANSITION_PAIRS}
    result = run_extractor(SEED, json.dumps(payload))
    if result.returncode != 0:
        pytest.fail(f"running the seed under node failed:\n{result.stderr}")
    return json.loads(result.stdout)


def run_extractor(seed_path: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the seed oracle test needs it")
    return subprocess.run(
        [node, str(EXTRACT), str(seed_path)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ordered(document: dict) -> list[tuple[str, Any]]:
    """A dict's items in order: key order is part of what must match."""
    return list(document.items())


def python_messages(session: CheckoutSession) -> list[list[tuple[str, Any]]]:
    return [ordered(m.model_dump(mode="json", exclude_unset=True)) for m in build_messages(session)]


def python_transition_error(current: str, target: str) -> str | None:
    try:
        check_transition(current, target)
    except InvalidTransition as error:
        return error.message
    return None


def assert_all_match(what: str, cases: list, python: list, seed: list) -> None:
    assert len(python) == len(seed) == len(cases)
    mismatches = [
        f"case {i}: {json.dumps(case)}\n  python: {mine!r}\n  seed:   {theirs!r}"
        for i, (case, mine, theirs) in enumerate(zip(cases, python, seed, strict=True))
        if mine != theirs
    ]
    assert not mismatches, f"{len(mismatches)} {what} mismatches, first:\n" + "\n".join(
        mismatches[:3]
    )


# ─── The comparisons ───


def test_extracted_every_seed_rule(seed: dict) -> None:
    assert seed["extracted"] == [
        "determineStatus",
        "buildMessages",
        "recalculateTotals",
        "getAllowedTransitions",
        "checkTransition",
    ]


def test_totals_match_seed(cases: list[dict], seed: dict) -> None:
    sessions = [CheckoutSession.model_validate(case) for case in cases]
    python = [
        ordered(recalculate_totals(s.line_items, s.currency).model_dump(mode="json"))
        for s in sessions
    ]
    assert_all_match("totals", cases, python, [ordered(t) for t in seed["totals"]])


def test_messages_match_seed(cases: list[dict], seed: dict) -> None:
    python = [python_messages(CheckoutSession.model_validate(case)) for case in cases]
    expected = [[ordered(m) for m in messages] for messages in seed["messages"]]
    assert_all_match("messages", cases, python, expected)


def test_status_matches_seed(cases: list[dict], seed: dict) -> None:
    python = [determine_status(CheckoutSession.model_validate(case)) for case in cases]
    assert_all_match("status", cases, python, seed["status"])


@pytest.mark.parametrize("status", STATUSES)
def test_allowed_transitions_match_seed(seed: dict, status: str) -> None:
    assert list(allowed_transitions(status)) == seed["allowed"][status]


def test_transition_errors_match_seed(seed: dict) -> None:
    python = [python_transition_error(current, target) for current, target in TRANSITION_PAIRS]
    assert_all_match("transition", TRANSITION_PAIRS, python, seed["transitions"])


# ─── The oracle itself ───


def test_cases_reach_the_interesting_corners(cases: list[dict], seed: dict) -> None:
    """Guard against a generator that only ever exercises the easy paths."""
    subtotals = [t["subtotal"] for t in seed["totals"]]
    assert sum(s % 200 == 100 for s in subtotals) > 300  # fee of exactly x.5
    assert sum(s < 0 for s in subtotals) > 100
    assert sum(abs(s) >= 10**11 for s in subtotals) > 100
    assert sum(t["discount"] > 0 for t in seed["totals"]) > 300
    assert set(Counter(seed["status"])) == {
        "incomplete",
        "requires_escalation",
        "ready_for_complete",
    }
    assert min(Counter(seed["status"]).values()) > 50
    assert set(len(m) for m in seed["messages"]) == {0, 1, 2, 3, 4}
    assert sum(error is None for error in seed["transitions"]) == 4


def test_extractor_refuses_a_seed_without_the_rules(tmp_path: Path) -> None:
    changed = tmp_path / "seed.ts"
    source = SEED.read_text(encoding="utf-8")
    changed.write_text(source.replace("function recalculateTotals(", "function totals("))
    result = run_extractor(changed, '{"sessions": []}')
    assert result.returncode != 0
    assert "seed extraction failed: recalculateTotals not found" in result.stderr


def test_extractor_refuses_an_annotation_it_cannot_strip(tmp_path: Path) -> None:
    changed = tmp_path / "seed.ts"
    source = SEED.read_text(encoding="utf-8")
    changed.write_text(source.replace("const taxRate = 0.08", "const taxRate: number = 0.08"))
    result = run_extractor(changed, '{"sessions": []}')
    assert result.returncode != 0
    assert "SyntaxError" in result.stderr
