"""The daemon's IMAP watcher against a real Dovecot and a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from gateway.clock import FakeClock
from store.db import Store
from tests.ingest.conftest import ServerFactory
from tests.support.dovecot import DovecotServer
from tests.support.imap_gateway import ImapGateway, imap_config, urgent
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until

SEEN = b"\\Seen"
Factory = Callable[..., ImapGateway]


@pytest.fixture
def make_gateway(imap_gateway_on: ServerFactory, dovecot_server: DovecotServer) -> Factory:
    """Gateways on the shared Dovecot: call with `[[imap]]` overrides only."""
    return functools.partial(imap_gateway_on, dovecot_server)


def test_mail_appended_during_idle_becomes_a_case_with_ack(make_gateway: Factory) -> None:
    gateway = make_gateway(mode="idle")
    time.sleep(0.2)  # let the watcher enter IDLE; the mail must arrive by push, not catch-up
    uid = gateway.append(urgent())

    gateway.wait_for_cases(1)
    [item] = gateway.items()
    assert (item.source, item.state, item.decision) == ("imap:support", "done", "open")
    gateway.wait_all_seen()
    assert SEEN in gateway.flags()[uid]
    position = gateway.position()
    assert position is not None and position.last_uid == uid


def test_polling_mode_takes_new_mail(make_gateway: Factory) -> None:
    gateway = make_gateway(mode="poll", poll_interval="1s")
    first = gateway.append(urgent(1))
    second = gateway.append(urgent(2))

    gateway.wait_for_cases(2)
    gateway.wait_all_seen()
    position = gateway.position()
    assert position is not None and position.last_uid == max(first, second)


def test_mail_waiting_before_start_is_taken_and_old_read_mail_is_not(
    dovecot_server: DovecotServer, make_gateway: Factory
) -> None:
    # First start: unread mail is work to do; mail somebody already read is history.
    already_read, unread = urgent(1), urgent(2)
    dovecot_server.append("support", "secret", "INBOX", already_read, flags=[SEEN])
    dovecot_server.append("support", "secret", "INBOX", unread)

    gateway = make_gateway()
    gateway.wait_for_cases(1)
    assert [item.raw for item in gateway.items()] == [unread]


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    noisy = [r for r in caplog.records if r.name.startswith("gateway") and r.exc_info]
    assert not noisy, [r.getMessage() for r in noisy]


@pytest.mark.parametrize("outage", ["restart", "kill"])
def test_server_outage_loses_nothing(
    make_gateway: Factory,
    dovecot_server: DovecotServer,
    caplog: pytest.LogCaptureFixture,
    outage: str,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    # What this test holds the watcher to is that nothing is lost. In about one full
    # run in three, a message appended just as the watcher reconnects got no IDLE
    # notification from the restarted server (cause not found yet); the periodic
    # re-check (`noop_interval`, 1 minute by default) then finds it, so it is kept
    # short here and the test still fails if the mail is never taken.
    gateway = make_gateway(mode="idle", noop_interval="2s")
    gateway.append(urgent(1))
    gateway.wait_for_cases(1)

    if outage == "restart":
        dovecot_server.stop()
    else:
        dovecot_server.kill()
    wait_until(lambda: not gateway.watcher.ready.is_set(), what="watcher to notice the outage")
    # Delivered by the MTA straight into the maildir while IMAP is down.
    dropped = dovecot_server.mail_root / "support" / "Maildir" / "new" / "1.outage.test"
    dropped.write_bytes(urgent(2))
    dovecot_server.start()
    gateway.append(urgent(3))

    gateway.wait_for_cases(3, timeout=20)
    assert gateway.cases() == 3 and gateway.acks() == 3
    gateway.wait_all_seen()
    _no_tracebacks(caplog)
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert failures, "the outage must be logged"
    assert all("support@127.0.0.1" in line and "retrying in" in line for line in failures)
    assert any("reconnected" in r.getMessage() for r in caplog.records)


def test_wrong_password_is_one_clear_line_and_keeps_retrying(
    make_gateway: Factory,
    dovecot_server: DovecotServer,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Any,
    store: Store,
    smtp_sink: SmtpSink,
    clock: FakeClock,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    secret = tmp_path / "imap-password"
    secret.write_text("wrong\n")
    config = imap_config(store, smtp_sink, dovecot_server, password="", password_file=str(secret))
    gateway = ImapGateway(config, store, clock, dovecot_server)
    gateway.daemon.start()
    try:
        gateway.append(urgent())
        wait_until(
            lambda: sum("login refused" in r.getMessage() for r in caplog.records) >= 2,
            what="repeated login failures",
        )
        line = next(r for r in caplog.records if "login refused" in r.getMessage())
        assert line.levelno == logging.ERROR
        assert "imap support (support@127.0.0.1:" in line.getMessage()
        assert gateway.cases() == 0
        _no_tracebacks(caplog)

        secret.write_text("secret\n")  # the password file is read again at each login
        gateway.wait_for_cases(1)
    finally:
        gateway.stop()


def test_wrong_password_with_exit_on_auth_failure_stops_the_daemon(
    dovecot_server: DovecotServer,
    caplog: pytest.LogCaptureFixture,
    store: Store,
    smtp_sink: SmtpSink,
    clock: FakeClock,
) -> None:
    config = imap_config(
        store, smtp_sink, dovecot_server, password="wrong", exit_on_auth_failure=True
    )
    gateway = ImapGateway(config, store, clock, dovecot_server)
    gateway.daemon.start()
    try:
        wait_until(lambda: gateway.daemon.exit_code == 2, what="daemon to give up")
        assert any("giving up" in r.getMessage() for r in caplog.records)
    finally:
        gateway.stop()
