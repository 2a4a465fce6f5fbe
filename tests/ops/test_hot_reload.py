"""Hot reload while mail flows through the real SMTP listener: valid swaps, broken is refused."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.clock import FakeClock
from gateway.daemon import Daemon
from gateway.ops.reload import ConfigReloader, load_snapshot
from store.db import Store
from store.models import InboundItem
from tests.support.cli import send_once_listening, start_run
from tests.support.mails import build_mail, send
from tests.support.smtp_sink import SmtpSink, free_port
from tests.support.waiting import wait_until

GDPR_RULE = """
[[rules]]
kind = "phrase"
name = "gdpr-request"
level = 3
phrases = ['(?i)\\bGDPR\\b']
"""
BROKEN_RULE = """
[[rules]]
kind = "phrase"
name = "broken"
phrases = ['[a-']
"""


def base_toml(store_url: str, smtp_port: int, sink_port: int) -> str:
    return (
        f'[store]\nurl = "{store_url}"\n'
        f'[smtp]\nport = {smtp_port}\naccept_recipients = ["support@example.com"]\n'
        f'[outbound]\nmode = "smtp"\nport = {sink_port}\nretry_initial = "1s"\n'
        "[monitoring]\nenabled = false\n"
    )


def write_atomically(path: Path, text: str) -> None:
    # Editors and config management replace the file; a reader never sees half of it.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def items(store: Store) -> list[InboundItem]:
    with store.session() as session:
        return list(session.scalars(select(InboundItem).order_by(InboundItem.id)))


def test_reload_while_mail_flows_loses_nothing(
    store: Store,
    smtp_sink: SmtpSink,
    clock: FakeClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    path = tmp_path / "gw.toml"
    base = base_toml(store.url, free_port(), smtp_sink.port)
    write_atomically(path, base)
    first = load_snapshot(path)
    reloader = ConfigReloader(path, first, min_interval=0.0)
    daemon = Daemon(first.config, store, clock, reloader=reloader)
    port = first.config.smtp.port
    daemon.start()
    total = 45
    sent: list[int] = []

    def keep_sending() -> None:
        for n in range(total):
            send(port, build_mail(subject=f"GDPR question {n}", message_id=f"<g{n}@acme.example>"))
            sent.append(n)

    sender = threading.Thread(target=keep_sending)
    try:
        sender.start()
        wait_until(
            lambda: sum(i.state == "done" for i in items(store)) >= 5, what="first mails done"
        )
        write_atomically(path, base + GDPR_RULE)
        with_rule = load_snapshot(path).version
        wait_until(
            lambda: any(i.config_version == with_rule for i in items(store)),
            what="the new config to decide",
        )
        write_atomically(path, base + GDPR_RULE + BROKEN_RULE)
        wait_until(lambda: reloader.last_error is not None, what="the broken config refused")
        sender.join(30)
        wait_until(
            lambda: len(items(store)) == total and all(i.state == "done" for i in items(store)),
            what="every mail processed",
        )
        # SIGHUP's path: back to the original file, reloaded on request.
        write_atomically(path, base)
        daemon.request_reload()
        send(port, build_mail(subject="GDPR again", message_id="<after@acme.example>"))
        wait_until(lambda: len(items(store)) == total + 1, what="last mail stored")
        wait_until(lambda: items(store)[-1].state == "done", what="last mail processed")
    finally:
        sender.join(30)
        daemon.stop()

    stored = items(store)
    assert len(sent) == total and len(stored) == total + 1
    assert all(i.state == "done" for i in stored)
    versions = [i.config_version for i in stored[:total]]
    assert set(versions) == {first.version, with_rule}
    # Versions switch once, between messages, and the broken file never decided anything.
    switch = versions.index(with_rule)
    assert versions == [first.version] * switch + [with_rule] * (total - switch)
    assert switch >= 5
    # Each mail was decided by the rules of the version it records.
    assert all((i.decision == "open") == (i.config_version == with_rule) for i in stored[:total])
    assert stored[-1].config_version == first.version and stored[-1].decision == "ignore"
    assert reloader.rejected >= 1
    rejected = [r.getMessage() for r in caplog.records if "reload rejected" in r.getMessage()]
    assert len(rejected) == 1
    assert rejected[0].startswith(
        f"config reload rejected, still running version {with_rule}: config error: {path}: "
        "rules[1 ('broken')].phrases[0]: invalid regular expression '[a-': "
        "unterminated character set at position 0"
    )
    assert any(f"version {first.version} -> {with_rule}" in r.getMessage() for r in caplog.records)


def test_sighup_with_broken_config_keeps_the_daemon_running(tmp_path: Path) -> None:
    smtp_port = free_port()
    path = tmp_path / "escalation-gateway.toml"
    base = (
        f'[store]\nurl = "sqlite:///{tmp_path}/gw.db"\n[smtp]\nport = {smtp_port}\n'
        f'[outbound]\nmaildir = "{tmp_path}/out"\n[monitoring]\nenabled = false\n'
    )
    path.write_text(base)
    daemon = start_run(tmp_path)
    out = tmp_path / "out" / "new"
    try:
        send_once_listening(smtp_port, build_mail(subject="URGENT: before reload"))
        wait_until(lambda: out.is_dir() and len(list(out.iterdir())) == 2, what="first replies")
        path.write_text(base + BROKEN_RULE)
        daemon.send_signal(signal.SIGHUP)
        send(smtp_port, build_mail(subject="URGENT: after reload"))
        wait_until(lambda: len(list(out.iterdir())) == 4, what="mail handled after SIGHUP")
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    log = stderr.decode()
    assert daemon.returncode == 0, log
    assert (
        "config error: escalation-gateway.toml: rules[0 ('broken')].phrases[0]: "
        "invalid regular expression '[a-'" in log
    )
    assert "config reload rejected, still running version" in log
    assert "Traceback" not in log
