"""The sent journal: outlives a SIGKILL, is believed only where it must be, and settles marks."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.clock import FakeClock
from gateway.outbound.delivery import CLAIM_LEASE, OutboxSender
from gateway.outbound.reclaim import RECOVERED_NOTE
from gateway.outbound.sent_journal import SentJournal, entries_in, journal_folder, journals_in
from store.db import Store
from store.models import OutboxMail
from tests.conftest import make_config
from tests.outbound.outbox import queue_pending
from tests.outbound.smarthost import Smarthost
from tests.outbound.test_lease import holder_of_process
from tests.support.mails import build_mail

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

RECORD_THEN_DIE = """
import os, signal, sys
from datetime import datetime, UTC
from pathlib import Path
from gateway.outbound.sent_journal import SentJournal
journal = SentJournal(Path(sys.argv[1]), "holder-text")
for number in (7, 8, 9):
    journal.record(number, f"m{number}@gw.example", datetime(2026, 12, 2, 9, number, tzinfo=UTC))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_what_a_sender_journalled_survives_its_sigkill(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    run = subprocess.run([sys.executable, "-c", RECORD_THEN_DIE, str(folder)], check=False)
    assert run.returncode == -signal.SIGKILL
    [(holder, path)] = list(journals_in(folder))
    assert holder == "holder-text"
    entries = entries_in(path)
    assert sorted(entries) == [7, 8, 9]
    assert entries[8].message_id == "m8@gw.example"
    assert entries[8].sent_at.isoformat() == "2026-12-02T09:08:00+00:00"


EXIT_CLEANLY = """
import sys
from datetime import datetime, UTC
from pathlib import Path
from gateway.outbound.sent_journal import journal_of
journal = journal_of(Path(sys.argv[1]), sys.argv[2])
journal.record(1, "m1@gw.example", datetime(2026, 12, 2, 9, tzinfo=UTC))
if sys.argv[2] == "marked":
    journal.clear()
"""


def test_a_clean_exit_removes_the_journal_unless_it_names_unmarked_mail(tmp_path: Path) -> None:
    for holder in ("marked", "mark-failed"):
        subprocess.run([sys.executable, "-c", EXIT_CLEANLY, str(tmp_path), holder], check=True)
    [(holder, path)] = list(journals_in(tmp_path))
    assert holder == "mark-failed" and sorted(entries_in(path)) == [1]


def test_a_line_cut_short_is_skipped_and_clear_keeps_the_holder(tmp_path: Path) -> None:
    journal = SentJournal(tmp_path / "j", "me")
    journal.record(1, "a@gw.example", NOW)
    with journal.path.open("ab") as handle:
        handle.write(b"2 17966")  # a full disk stopped the write here
    assert sorted(journal.entries()) == [1]
    assert journal.dirty
    journal.clear()
    assert not journal.dirty and journal.entries() == {}
    assert [holder for holder, _ in journals_in(tmp_path / "j")] == ["me"]


def test_a_folder_others_can_write_into_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with caplog.at_level(logging.WARNING, "gateway.delivery"):
        journal = SentJournal(shared / "store-x", "me")
    journal.record(1, "a@gw.example", NOW)
    assert journal.entries() == {} and not journal.dirty
    assert "writable by others" in caplog.text
    # A sticky folder such as /tmp may hold ours: nobody else can move it away.
    shared.chmod(0o1777)
    assert SentJournal(shared / "store-y", "me").path.exists()


def test_each_store_has_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = journal_folder("sqlite:///one.db", str(tmp_path))
    other = journal_folder("sqlite:///other.db", str(tmp_path))
    assert one.parent == other.parent == tmp_path and one != other
    # Unset: beside a SQLite file, as its -wal and -wake companions are.
    beside = journal_folder(f"sqlite:///{tmp_path}/gw.db", "").parent
    assert beside == tmp_path / "gw.db-sent-journal"
    # PostgreSQL under the systemd unit: its StateDirectory, not the private /tmp.
    postgres = "postgresql://gw@db.example/gateway"
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/state:{tmp_path}/other")
    assert journal_folder(postgres, "").parent == tmp_path / "state" / "sent-journal"
    monkeypatch.delenv("STATE_DIRECTORY")
    assert journal_folder(postgres, "").parent.name.startswith("escalation-gateway-")


def _queue(store: Store, clock: FakeClock, number: int, holder: str) -> tuple[int, str]:
    message_id = f"journal-{number}@gw.example"
    mail_id = queue_pending(
        store,
        clock,
        recipients=["a@kunde.example"],
        raw=build_mail(message_id=f"<{message_id}>"),
        message_id=message_id,
        next_attempt_at=clock.now() + CLAIM_LEASE,
        lease_holder=holder,
    )
    return mail_id, message_id


def test_a_dead_senders_journal_marks_its_mail_sent_before_its_leases_go_back(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    ended, _ = holder_of_process(keep_running=False)
    config = make_config(store, outbound={"sent_journal_dir": str(tmp_path)}).outbound
    folder = journal_folder(store.url, config.sent_journal_dir)
    journalled, message_id = _queue(store, clock, 1, str(ended))
    restored_over, _ = _queue(store, clock, 2, str(ended))
    not_sent, _ = _queue(store, clock, 3, str(ended))
    dead = SentJournal(folder, str(ended))
    at = clock.now() - timedelta(seconds=3)
    dead.record(journalled, message_id, at)
    # Same id, another Message-ID: the store was restored from a backup since.
    dead.record(restored_over, "some-older-mail@gw.example", at)

    sender = OutboxSender(config, store, clock)
    assert sender.reclaim_orphans() == 2
    with store.session() as session:
        rows = {m.id: m for m in session.scalars(select(OutboxMail))}
    assert (rows[journalled].state, rows[journalled].last_error) == ("sent", RECOVERED_NOTE)
    assert rows[journalled].sent_at == at and rows[journalled].lease_holder is None
    for due in (restored_over, not_sent):
        assert rows[due].state == "pending" and rows[due].next_attempt_at == clock.now()
    assert not dead.path.exists()


def test_marks_that_failed_after_their_250_are_settled_before_the_next_batch(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    with Smarthost() as smarthost:
        config = make_config(
            store, outbound={"port": smarthost.port, "sent_journal_dir": str(tmp_path)}
        ).outbound
        sender = OutboxSender(config, store, clock)
        mail_id, message_id = _queue(store, clock, 1, sender.holder)
        # As if the store had failed on this mark after the smarthost's 250.
        sender.journal.record(mail_id, message_id, clock.now())
        clock.advance(CLAIM_LEASE + timedelta(seconds=1))
        assert sender.deliver_due() == 0
    assert smarthost.total() == 0
    with store.session() as session:
        row = session.get(OutboxMail, mail_id)
        assert row is not None and (row.state, row.last_error) == ("sent", RECOVERED_NOTE)
    assert not sender.journal.dirty
