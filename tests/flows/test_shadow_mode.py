"""Shadow mode through the real SMTP listener: every decision recorded, nothing sent."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from sqlalchemy import func, select

from gateway.clock import FakeClock
from gateway.config.version import version_of_config
from gateway.daemon import Daemon
from store.db import Store
from store.models import Case, CaseEvent, InboundItem, OutboxMail
from tests.conftest import make_config
from tests.support.cli import run_gateway
from tests.support.mails import build_mail, send
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until


def test_shadow_config_records_decisions_and_sends_nothing(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    config = make_config(store, smtp_sink, shadow=True)
    daemon = Daemon(config, store, clock)
    daemon.start()
    try:
        send(config.smtp.port, build_mail(subject="URGENT: checkout down"))
        send(config.smtp.port, build_mail(subject="How do I add a user?", body="Hi!\n"))

        def processed() -> bool:
            with store.session() as session:
                done = session.scalar(select(func.count()).where(InboundItem.state == "done"))
            return done == 2

        wait_until(processed, what="both mails processed")
        # Give the outbox sender every chance to (wrongly) send.
        daemon.sender.deliver_due()
        time.sleep(0.3)
    finally:
        daemon.stop()

    assert smtp_sink.mails == []
    with store.session() as session:
        items = list(session.scalars(select(InboundItem).order_by(InboundItem.id)))
        [case] = session.scalars(select(Case))
        outbox = list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))
        [opened] = session.scalars(select(CaseEvent).where(CaseEvent.kind == "opened"))
    version = version_of_config(config)
    assert [(i.decision, i.config_version) for i in items] == [
        ("open", version),
        ("ignore", version),
    ]
    assert items[1].explanation is not None
    assert items[1].explanation["config_version"] == version
    assert opened.data["decision"]["config_version"] == version
    assert case.level == 4
    assert {(m.kind, m.state) for m in outbox} == {
        ("owner_notification", "shadow"),
        ("acknowledgement", "shadow"),
    }
    assert all(m.sent_at is None and m.attempts == 0 for m in outbox)


def test_outbox_list_shows_shadow_mail(tmp_path: Path) -> None:
    (tmp_path / "escalation-gateway.toml").write_text(
        f'shadow = true\n[store]\nurl = "sqlite:///{tmp_path}/gw.db"\n'
        f'[outbound]\nmaildir = "{tmp_path}/out"\n'
    )

    def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return run_gateway(*args, cwd=tmp_path, stdin=stdin)

    ingested = cli("ingest", "-", stdin=build_mail(subject="URGENT: invoices missing"))
    assert ingested.returncode == 0, ingested.stderr.decode()
    assert not (tmp_path / "out" / "new").exists() or not any((tmp_path / "out" / "new").iterdir())
    listed = cli("outbox", "list", "--state", "shadow", "--json")
    assert listed.returncode == 0, listed.stderr.decode()
    rows = json.loads(listed.stdout)
    assert sorted(r["kind"] for r in rows) == ["acknowledgement", "owner_notification"]
    assert {r["state"] for r in rows} == {"shadow"} and {r["case"] for r in rows} == {"ESC-000001"}
    table = cli("outbox", "list").stdout.decode()
    assert "shadow" in table and "[ESC-000001] invoices missing" not in table
    assert "[ESC-000001] URGENT: invoices missing" in table
    assert cli("outbox", "list", "--state", "sent", "--json").stdout.strip() == b"[]"
