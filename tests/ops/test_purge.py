"""`purge`: a customer's data erased or anonymised, by address or domain, and logged."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from gateway.ops.purge import Selector, anonymise, erase, plan_purge
from gateway.work.worker import Worker
from store.db import Store
from store.models import (
    AutoReplyLog,
    Base,
    Case,
    CaseEvent,
    DataProtectionLog,
    InboundItem,
    OutboxMail,
)
from tests.conftest import make_config
from tests.support.cli import run_gateway_text
from tests.support.mails import build_mail

ALICE = "alice@acme.example"


def fill(store: Store, clock: FakeClock) -> None:
    """Alice's case and an ignored mail of hers, Carol's case at Acme, Bob's elsewhere."""
    mails = [
        (ALICE, build_mail(sender=f"Alice <{ALICE}>", subject="URGENT: checkout down")),
        (ALICE, build_mail(sender=f"Alice <{ALICE}>", subject="hello there")),
        ("carol@acme.example", build_mail(sender="carol@acme.example", subject="URGENT: x")),
        ("bob@other.example", build_mail(sender="bob@other.example", subject="URGENT: y")),
    ]
    for sender, raw in mails:
        store_inbound(store, raw, source="smtp", clock=clock, mail_from=sender)
    Worker(make_config(store), store, clock).process_batch()


def everything(store: Store) -> str:
    """Every row of every table, as text: where a stray copy of an address would show."""
    with store.engine.connect() as connection:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in connection.execute(table.select())
        ).lower()


def counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Case, CaseEvent, InboundItem, OutboxMail, AutoReplyLog)
        }


def test_erase_by_address_removes_her_data_and_keeps_everyone_elses(
    store: Store, clock: FakeClock
) -> None:
    fill(store, clock)
    assert ALICE in everything(store)
    with store.session() as session:
        others = session.scalars(select(Case.customer_email).order_by(Case.id)).all()
    assert others == [ALICE, "carol@acme.example", "bob@other.example"]

    selector = Selector(address="Alice@Acme.example")
    with store.transaction() as session:
        plan = plan_purge(session, selector)
        assert plan.summary()["cases"] == 1
        assert plan.summary()["inbound_items"] == 2  # her case's mail and the ignored one
        erase(session, plan, selector, "cli:dpo", clock.now())

    assert ALICE not in everything(store)
    with store.session() as session:
        left = session.scalars(select(Case.customer_email).order_by(Case.id)).all()
        [entry] = session.scalars(select(DataProtectionLog)).all()
    assert left == ["carol@acme.example", "bob@other.example"]
    assert counts(store)["inbound_items"] == 2
    assert (entry.action, entry.actor, entry.at) == ("erase", "cli:dpo", clock.now())
    assert entry.selector == "address-sha256:" + hashlib.sha256(ALICE.encode()).hexdigest()
    assert entry.counts["cases"] == 1 and entry.counts["case_events"] >= 1


def test_erase_by_domain_takes_every_address_there(store: Store, clock: FakeClock) -> None:
    fill(store, clock)
    selector = Selector(domain="acme.example")
    with store.transaction() as session:
        erase(session, plan_purge(session, selector), selector, "cli:dpo", clock.now())
    with store.session() as session:
        assert session.scalars(select(Case.customer_email)).all() == ["bob@other.example"]
        assert session.scalar(select(DataProtectionLog.selector)) == "domain:acme.example"
    rows = everything(store)
    assert ALICE not in rows and "carol@acme.example" not in rows


def test_anonymise_keeps_the_case_for_reports_without_who_or_what(
    store: Store, clock: FakeClock
) -> None:
    fill(store, clock)
    before = counts(store)
    with store.session() as session:
        case = session.scalars(select(Case).where(Case.customer_email == ALICE)).one()
        level, opened_at, kinds = case.level, case.opened_at, _kinds(session, case.id)
    selector = Selector(address=ALICE)
    with store.transaction() as session:
        anonymise(session, plan_purge(session, selector), selector, "cli:dpo", clock.now())

    assert ALICE not in everything(store)
    after = counts(store)
    assert after["cases"] == before["cases"]
    assert after["inbound_items"] == before["inbound_items"]
    assert after["auto_reply_log"] < before["auto_reply_log"]
    with store.session() as session:
        kept = session.get(Case, case.id)
        assert kept is not None
        assert (kept.level, kept.opened_at) == (level, opened_at)
        assert (kept.customer_email, kept.subject) == (
            f"anonymised-{case.id}@invalid",
            "[anonymised]",
        )
        assert _kinds(session, case.id) == [*kinds, "anonymised"]
        raws = session.scalars(select(InboundItem.raw).where(InboundItem.case_id == case.id))
        assert set(raws) == {b""}
        assert session.scalar(select(DataProtectionLog.action)) == "anonymise"
        # Nothing still waiting to go to her can be sent.
        states = session.scalars(select(OutboxMail.state).where(OutboxMail.case_id == case.id))
        assert "pending" not in set(states)


def _kinds(session: object, case_id: int) -> list[str]:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    query = select(CaseEvent.kind).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
    return list(session.scalars(query))


def test_a_copied_address_leaves_the_other_case_but_the_case_stays(
    store: Store, clock: FakeClock
) -> None:
    fill(store, clock)
    with store.transaction() as session:
        session.execute(
            update(Case)
            .where(Case.customer_email == "carol@acme.example")
            .values(customer_cc=[ALICE, "dave@acme.example"])
        )
    selector = Selector(address=ALICE)
    with store.transaction() as session:
        plan = plan_purge(session, selector)
        assert plan.summary()["copied_on_cases"] == 1
        erase(session, plan, selector, "cli:dpo", clock.now())
    with store.session() as session:
        carol = session.scalars(select(Case).where(Case.customer_email == "carol@acme.example"))
        assert carol.one().customer_cc == ["dave@acme.example"]


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_gateway_text(*args, cwd=folder, timeout=120)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_command_shows_first_refuses_open_cases_and_our_own_domain(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    fill(store, clock)
    (tmp_path / "escalation-gateway.toml").write_text(f'[store]\nurl = "{store.url}"\n')
    dry = cli(tmp_path, "purge", "--address", ALICE)
    assert dry.returncode == 2 and "not closed" in dry.stderr
    with store.transaction() as session:
        session.execute(update(Case).values(state="closed", closed_at=clock.now()))
    shown = cli(tmp_path, "purge", "--address", ALICE)
    assert shown.returncode == 0, shown.stderr
    assert "would erase: 1 cases" in shown.stdout and "--yes" in shown.stdout
    assert ALICE in everything(store)
    done = cli(tmp_path, "purge", "--address", ALICE, "--yes", "--actor", "ticket DPO-7")
    assert done.returncode == 0, done.stderr
    assert ALICE not in everything(store)
    with store.session() as session:
        assert session.scalar(select(DataProtectionLog.actor)) == "ticket DPO-7"
    ours = cli(tmp_path, "purge", "--domain", "example.com", "--yes")
    assert ours.returncode == 2 and "own domains" in ours.stderr
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM cases")).scalar() == 2
