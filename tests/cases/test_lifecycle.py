"""The lifecycle table and API, as an email-command layer will call it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.cases.lifecycle import (
    ALLOWED,
    STATES,
    IllegalTransition,
    LifecycleError,
    ReopenWindowExpired,
    UnknownState,
)
from gateway.cli.case_changes import CaseChanges, UnknownCase
from gateway.cli.main import main
from gateway.clock import FakeClock
from store.db import Store
from store.models import CaseEvent
from tests.support.smtp_sink import SmtpSink
from tests.support.timeline_sim import Simulation, timeline_config
from tests.timeline.test_timeline_status import LEE, open_level_two


@pytest.fixture
def sim(store: Store, smtp_sink: SmtpSink, clock: FakeClock) -> Simulation:
    return Simulation(store, smtp_sink, clock, timeline_config(store, smtp_sink))


def events(sim: Simulation, key: str) -> list[tuple[str, str, str]]:
    case = sim.case(key)
    with sim.store.session() as session:
        rows = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        )
        return [(e.kind, e.actor, e.detail) for e in rows]


def test_table_covers_every_state_and_only_known_states() -> None:
    assert set(ALLOWED) == set(STATES)
    for targets in ALLOWED.values():
        assert targets <= set(STATES)
    assert ALLOWED["closed"] == {"open"}


def test_happy_path_records_who_and_why(sim: Simulation) -> None:
    key = open_level_two(sim)
    for state in ("acknowledged", "investigating", "waiting_on_customer", "investigating"):
        sim.commands.set_state(key, state, actor=LEE, reason=f"to {state}")
    sim.commands.set_state(key, "resolved", actor=LEE, reason="patched")
    assert sim.case(key).state == "monitoring"
    changes = [e for e in events(sim, key) if e[0] == "state_changed"]
    assert [c[2] for c in changes] == [
        "open -> acknowledged: to acknowledged",
        "acknowledged -> investigating: to investigating",
        "investigating -> waiting_on_customer: to waiting_on_customer",
        "waiting_on_customer -> investigating: to investigating",
        "investigating -> resolved: patched",
        "resolved -> monitoring: watching the fix",
    ]
    assert {c[1] for c in changes} == {LEE}


def test_illegal_transition_is_a_clear_error_and_changes_nothing(sim: Simulation) -> None:
    key = open_level_two(sim)
    before = events(sim, key)
    with pytest.raises(IllegalTransition, match=r"is open; it cannot move to closed \(allowed:"):
        sim.commands.set_state(key, "closed", actor=LEE)
    with pytest.raises(UnknownState):
        sim.commands.set_state(key, "on_fire", actor=LEE)
    with pytest.raises(UnknownCase):
        sim.commands.note("ESC-999999", "hello", actor=LEE)
    assert events(sim, key) == before
    assert sim.case(key).state == "open"


def test_acknowledge_twice_is_refused(sim: Simulation) -> None:
    key = open_level_two(sim)
    sim.commands.set_state(key, "acknowledged", actor=LEE)
    with pytest.raises(LifecycleError, match="already acknowledged"):
        sim.commands.set_state(key, "acknowledged", actor=LEE)


def test_reopen_only_within_the_window(sim: Simulation) -> None:
    key = open_level_two(sim)
    sim.commands.set_state(key, "resolved", actor=LEE)
    sim.commands.set_state(key, "closed", actor=LEE, reason="done")
    sim.clock.advance(timedelta(days=6))
    sim.commands.set_state(key, "open", actor="alice@acme.example", reason="back")
    assert sim.case(key).state == "open"
    sim.commands.set_state(key, "resolved", actor=LEE)
    sim.commands.set_state(key, "closed", actor=LEE)
    sim.clock.advance(timedelta(days=8))
    with pytest.raises(ReopenWindowExpired):
        sim.commands.set_state(key, "open", actor="alice@acme.example")


def test_notes_and_set_level(sim: Simulation) -> None:
    key = open_level_two(sim)
    sim.commands.note(key, "Customer call booked.", actor=LEE)
    sim.commands.note(key, "Suspect the new proxy.", internal=True, actor=LEE)
    with sim.store.transaction() as session:
        case = sim.case(key)
        case = session.merge(case)
        sim.commands.lifecycle.set_level(
            session,
            case,
            3,
            actor="lead@example.com",
            reason="needs engineering",
            now=sim.clock.now(),
        )
    case = sim.case(key)
    assert (case.level, case.owner_email) == (3, "oncall@example.com")
    kinds = [e[0] for e in events(sim, key)]
    assert kinds[-3:] == ["public_note", "internal_note", "level_changed"]
    with pytest.raises(LifecycleError, match="needs some text"):
        sim.commands.note(key, "   ", actor=LEE)


def test_cli_note_and_set_state(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = open_level_two(sim)
    monkeypatch.setattr("gateway.cli.main.load_config", lambda _path: (sim.config, "<test>"))
    assert main(["cases", "note", key, "We found the cause."]) == 0
    assert main(["cases", "set-state", key, "investigating", "--reason", "cause found"]) == 0
    assert f"{key}: state=investigating level=2" in capsys.readouterr().out
    assert main(["cases", "set-state", key, "closed"]) == 2
    assert "cannot move to closed" in capsys.readouterr().err
    kinds = [e[0] for e in events(sim, key)]
    assert "public_note" in kinds and sim.case(key).state == "investigating"


def test_case_commands_work_on_a_fresh_instance(sim: Simulation) -> None:
    key = open_level_two(sim)
    fresh = CaseChanges(sim.config, sim.store, sim.clock)
    fresh.set_state(key, "investigating", actor=LEE)
    assert sim.case(key).first_responded_at == sim.clock.now()
