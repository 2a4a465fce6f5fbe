"""SIGKILL the gateway between committing a mail and flagging it: nothing twice, nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.clock import SystemClock
from store.db import Store
from tests.support.dovecot import DovecotServer
from tests.support.imap_gateway import ImapGateway, imap_config, imap_entry, urgent
from tests.support.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parents[2]

# The daemon as `escalation-gateway run` builds it, with a hook that kills the
# process outright at one step of the watcher's commit-then-flag sequence.
RUNNER = """
import json, os, signal, sys
from gateway.clock import SystemClock
from gateway.config import parse_config
from gateway.daemon import Daemon
from store.db import Store

data, stage = json.loads(sys.argv[1]), sys.argv[2]
config = parse_config(data, "<crash test>")
store = Store(config.store.url)
daemon = Daemon(config, store, SystemClock())

def checkpoint(reached):
    if reached == stage:
        os.kill(os.getpid(), signal.SIGKILL)

daemon.imap_watchers[0].sync.checkpoint = checkpoint
daemon.run_forever()
"""


@pytest.mark.parametrize("stage", ["stored", "recorded"])
def test_sigkill_after_commit_gives_no_duplicate_case_or_reply(
    store: Store,
    smtp_sink: SmtpSink,
    dovecot_server: DovecotServer,
    stage: str,
) -> None:
    uid = dovecot_server.append("support", "secret", "INBOX", urgent())
    assert uid is not None  # Dovecot reports APPENDUID (UIDPLUS)
    data = {
        "store": {"url": store.url},
        "smtp": {"enabled": False},
        "outbound": {"mode": "smtp", "host": "127.0.0.1", "port": smtp_sink.port},
        "imap": [imap_entry(dovecot_server, initial_scan="all")],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(data), stage],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]

    gateway = ImapGateway(
        imap_config(store, smtp_sink, dovecot_server, initial_scan="all"),
        store,
        # Real time, as in the killed process: its outbox rows carry real timestamps.
        SystemClock(),
        dovecot_server,
    )
    [first] = gateway.items()  # committed before the kill
    assert first.source == "imap:support"
    assert b"\\Seen" not in gateway.flags()[uid]  # killed before the flag

    gateway.start()
    try:
        gateway.wait_for_cases(1)
        gateway.wait_all_seen()
        assert gateway.cases() == 1
        assert gateway.acks() == 1
        states = [item.state for item in gateway.items()]
        # The mail and its UID commit together, so either kill point finds it recorded:
        # it is not fetched again, only flagged \Seen by the next run's reconciliation.
        assert states == ["done"]
        position = gateway.position()
        assert position is not None and position.last_uid == uid
        smtp_sink.wait_for(1)
        assert len(smtp_sink.to("alice@acme.example")) == 1
    finally:
        gateway.stop()
