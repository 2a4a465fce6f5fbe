"""An IMAP watcher's health on the real /healthz of a running daemon, against real Dovecot.

The watcher thread survives every outage, so "alive" said nothing: a watcher whose
login kept failing was reported healthy. These tests hold /healthz to what matters,
whether the folder is being synced, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.clock import FakeClock
from gateway.config.imap import ImapMailboxConfig
from gateway.daemon import Daemon
from store.db import Store
from tests.conftest import make_config
from tests.support.dovecot import DovecotServer
from tests.support.imap_gateway import imap_entry, urgent
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until

WATCHER = "imap:support"


def healthz(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    assert daemon.monitoring is not None
    url = f"http://127.0.0.1:{daemon.monitoring.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def watcher_problems(report: dict[str, Any]) -> list[str]:
    return [p for p in report["problems"] if p.startswith(WATCHER)]


@pytest.fixture
def start_daemon(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock, dovecot_server: DovecotServer
) -> Iterator[Any]:
    started: list[Daemon] = []

    def start(**mailbox: Any) -> Daemon:
        config = make_config(
            store,
            smtp_sink,
            smtp={"enabled": False},
            monitoring={"enabled": True, "port": 0},
            imap=[imap_entry(dovecot_server, **mailbox)],
        )
        daemon = Daemon(config, store, clock)
        daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop(timeout=10)


def test_repeated_failed_logins_make_healthz_503_with_the_reason(
    start_daemon: Any, dovecot_server: DovecotServer, tmp_path: Path
) -> None:
    secret = tmp_path / "imap-password"
    secret.write_text("wrong\n")
    daemon = start_daemon(password="", password_file=str(secret))
    watcher = daemon.imap_watchers[0]
    assert watcher.is_alive()

    def refused_three_times() -> bool:
        status, report = healthz(daemon)
        return status == 503 and bool(watcher_problems(report))

    wait_until(refused_three_times, what="/healthz to report the failing logins", timeout=30)
    status, report = healthz(daemon)
    assert status == 503
    assert report["healthy"] is False and report["components"][WATCHER] is False
    [problem] = watcher_problems(report)
    assert problem.startswith(f"{WATCHER} had ")
    assert "failed logins in a row (last: login refused: " in problem
    assert watcher.is_alive(), "the thread keeps retrying; only its health changed"

    # The password file is read at each login: once it is right, health comes back.
    secret.write_text("secret\n")
    dovecot_server.append("support", "secret", "INBOX", urgent())
    wait_until(lambda: healthz(daemon)[0] == 200, what="/healthz to recover", timeout=30)
    assert healthz(daemon)[1]["components"][WATCHER] is True
    assert watcher.failed_logins == 0


def test_no_successful_sync_within_the_bound_makes_healthz_503(
    start_daemon: Any, dovecot_server: DovecotServer, clock: FakeClock
) -> None:
    daemon = start_daemon(unhealthy_after="10m")
    watcher = daemon.imap_watchers[0]
    wait_until(watcher.ready.is_set, what="watcher to connect")
    status, report = healthz(daemon)
    assert status == 200 and report["components"][WATCHER] is True

    # Refused connections are not logins: only the time since the last sync counts.
    dovecot_server.stop()
    try:
        wait_until(lambda: not watcher.ready.is_set(), what="watcher to notice the outage")
        wait_until(lambda: watcher.last_failure != "", what="the failure to be recorded")
        clock.advance(timedelta(minutes=9))
        status, report = healthz(daemon)
        assert status == 200, report  # within the 10 minutes allowed
        clock.advance(timedelta(minutes=2))
        status, report = healthz(daemon)
        assert status == 503 and report["components"][WATCHER] is False
        [problem] = watcher_problems(report)
        assert problem.startswith(f"{WATCHER} has not synced for 11 minutes (limit 10 minutes)")
        assert "; last error: " in problem
        assert watcher.failed_logins == 0
    finally:
        dovecot_server.start()
    wait_until(lambda: healthz(daemon)[0] == 200, what="/healthz after the server is back")


def test_unhealthy_after_defaults_and_bounds() -> None:
    base = {"name": "support", "host": "imap.example.com", "username": "u", "password": "p"}
    idle = ImapMailboxConfig.model_validate(base)
    # A healthy IDLE watcher syncs every noop_interval (1 minute).
    assert idle.check_period == timedelta(minutes=1)
    assert idle.health_bound == timedelta(minutes=5)
    assert idle.unhealthy_after_failed_logins == 3
    slow = ImapMailboxConfig.model_validate({**base, "mode": "poll", "poll_interval": "10m"})
    assert slow.health_bound == timedelta(minutes=30)
    with pytest.raises(ValidationError, match="unhealthy_after must be longer than 10 minutes"):
        ImapMailboxConfig.model_validate(
            {**base, "mode": "poll", "poll_interval": "10m", "unhealthy_after": "5m"}
        )


def test_a_watcher_that_never_synced_turns_unhealthy_after_the_default_bound(
    start_daemon: Any, dovecot_server: DovecotServer, clock: FakeClock
) -> None:
    dovecot_server.stop()
    try:
        daemon = start_daemon()
        watcher = daemon.imap_watchers[0]
        wait_until(lambda: watcher.last_failure != "", what="the first refused connection")
        clock.advance(timedelta(minutes=5))
        assert healthz(daemon)[0] == 200  # the default bound is 5 minutes
        clock.advance(timedelta(minutes=1))
        status, report = healthz(daemon)
        assert status == 503
        assert watcher_problems(report) == [
            f"{WATCHER} has not synced since it started 6 minutes ago (limit 5 minutes); "
            f"last error: {watcher.last_failure}"
        ]
        assert "Connection refused" in watcher.last_failure
    finally:
        dovecot_server.start()
    wait_until(lambda: healthz(daemon)[0] == 200, what="/healthz once the server is up")
