"""Metric labels come from the schemas' closed sets (`worker.observability.metrics`):
no input can add series or put an id or an email in a label."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY

from worker.observability import metrics


def series(name: str) -> set[tuple[tuple[str, str], ...]]:
    """The label sets of the samples `name` has in this process's registry."""
    return {
        tuple(sorted(sample.labels.items()))
        for family in REGISTRY.collect()
        if family.name == name
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_two_hundred_made_up_types_and_outcomes_add_one_series() -> None:
    before = series("checkout_commands")

    for n in range(200):
        metrics.observe_outcome(f"buyer-{n}@example.com", f"made-up-{n}", 0.01)

    added = series("checkout_commands") - before
    assert added <= {(("outcome", "unknown"), ("type", "unknown"))}
    assert not any(
        "example.com" in value for labels in series("checkout_commands") for _, value in labels
    )


def test_the_schemas_types_and_outcomes_are_labels_as_they_are() -> None:
    metrics.observe_outcome("update_session", "session.updated", 0.01)
    metrics.observe_outcome("create_session", "invalid_transition", None)
    metrics.observe_outcome("cancel_session", "dead_lettered", None)

    labels = series("checkout_commands")
    assert (("outcome", "session.updated"), ("type", "update_session")) in labels
    assert (("outcome", "invalid_transition"), ("type", "create_session")) in labels
    assert (("outcome", "dead_lettered"), ("type", "cancel_session")) in labels


def test_dead_letter_codes_are_closed_too() -> None:
    metrics.count_dead_letter("worker_lost")
    metrics.count_dead_letter("x\nforged 1")

    labels = {dict(s).get("code") for s in series("checkout_dead_letters")}
    assert "worker_lost" in labels and "unknown" in labels
    assert "x\nforged 1" not in labels


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses listening on `port`, from /proc/net/tcp (hex, little-endian)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # LISTEN
            found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_the_metrics_endpoint_listens_on_this_host_only_by_default(tmp_path, monkeypatch) -> None:
    from tasks.embedded.stack import free_port
    from worker.settings import Settings

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # as `checkout worker` sets
    port = free_port()
    metrics.serve(port)

    assert listening_addresses(port) == {"127.0.0.1"}
    assert Settings().metrics_host == "127.0.0.1"
