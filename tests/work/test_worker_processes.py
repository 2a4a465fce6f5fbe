"""`[worker] processes = N`: the worker in child processes, fed by the real SMTP listener."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.clock import SystemClock
from gateway.config import ConfigError, load_config_file
from gateway.daemon import Daemon
from gateway.ops.reload import ConfigReloader, load_snapshot
from store.db import Store
from store.models import Case, InboundItem, OutboxMail
from tests.conftest import make_config
from tests.support.mails import build_mail, send
from tests.support.smtp_sink import SmtpSink, free_port
from tests.support.waiting import wait_until


def _items(store: Store) -> list[InboundItem]:
    with store.session() as session:
        return list(session.scalars(select(InboundItem).order_by(InboundItem.id)))


def _all_done(store: Store, count: int) -> bool:
    items = _items(store)
    return len(items) == count and all(i.state == "done" for i in items)


def _children(daemon: Daemon) -> list[int]:
    assert daemon.worker_processes is not None
    return daemon.worker_processes.pids()


def test_a_worker_process_opens_cases_and_the_parent_sends_the_replies(
    store: Store, smtp_sink: SmtpSink
) -> None:
    daemon = Daemon(make_config(store, smtp_sink, worker={"processes": 1}), store, SystemClock())
    daemon.start()
    try:
        (child,) = _children(daemon)
        assert child != os.getpid()
        for n in range(5):
            send(
                daemon.config.smtp.port,
                build_mail(subject=f"URGENT: export broken {n}", sender=f"c{n}@acme.example"),
                mail_from=f"c{n}@acme.example",
            )
        # An acknowledgement and an owner notification per mail, sent by the parent.
        smtp_sink.wait_for(10)
        wait_until(lambda: _all_done(store, 5), what="every mail processed")
    finally:
        daemon.stop()
    assert daemon.worker_processes is not None and daemon.worker_processes.alive() == 0
    with store.session() as session:
        cases = list(session.scalars(select(Case)))
        kinds = Counter(session.scalars(select(OutboxMail.kind)))
    assert sorted(c.level for c in cases) == [4] * 5
    assert kinds == {"acknowledgement": 5, "owner_notification": 5}
    assert {m.rcpt_tos[0] for m in smtp_sink.to("c3@acme.example")} == {"c3@acme.example"}


def _worker_health(daemon: Daemon) -> bool:
    assert daemon.monitoring is not None
    url = f"http://127.0.0.1:{daemon.monitoring.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        body = error.read()
    return bool(json.loads(body)["components"]["worker_processes"])


def test_a_killed_worker_process_is_restarted_and_nothing_is_lost(
    store: Store, smtp_sink: SmtpSink
) -> None:
    config = make_config(
        store, smtp_sink, worker={"processes": 1}, monitoring={"enabled": True, "port": 0}
    )
    daemon = Daemon(config, store, SystemClock())
    daemon.start()
    try:
        assert _worker_health(daemon)
        (first,) = _children(daemon)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not _worker_health(daemon), what="/healthz to report the dead child")
        # Mail keeps being accepted while no worker runs; it waits in the store.
        send(daemon.config.smtp.port, build_mail(subject="URGENT: while down"))
        wait_until(
            lambda: _children(daemon) != [first] and _all_done(store, 1),
            what="a new child to process the waiting mail",
            timeout=20,
        )
        assert _worker_health(daemon)
    finally:
        daemon.stop()
    (item,) = _items(store)
    assert item.decision == "open"


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_two_worker_processes_on_postgresql_take_each_mail_once(
    store: Store, smtp_sink: SmtpSink
) -> None:
    daemon = Daemon(make_config(store, smtp_sink, worker={"processes": 2}), store, SystemClock())
    daemon.start()
    total = 40
    try:
        assert len(set(_children(daemon))) == 2
        for n in range(total):
            send(
                daemon.config.smtp.port,
                build_mail(subject=f"URGENT: burst {n}", sender=f"b{n}@acme.example"),
                mail_from=f"b{n}@acme.example",
            )
        wait_until(lambda: _all_done(store, total), what="the burst processed", timeout=30)
    finally:
        daemon.stop()
    with store.session() as session:
        cases = list(session.scalars(select(Case)))
        acks = Counter(
            tuple(m.recipients)
            for m in session.scalars(select(OutboxMail).where(OutboxMail.kind == "acknowledgement"))
        )
    assert len(cases) == total
    assert len(acks) == total and set(acks.values()) == {1}


def test_a_config_reload_replaces_the_worker_processes(
    store: Store, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    path = tmp_path / "gw.toml"
    base = (
        f'[store]\nurl = "{store.url}"\n'
        f'[smtp]\nport = {free_port()}\naccept_recipients = ["support@example.com"]\n'
        f'[outbound]\nmode = "smtp"\nport = {smtp_sink.port}\n'
        "[monitoring]\nenabled = false\n[worker]\nprocesses = 1\n"
    )
    path.write_text(base)
    first = load_snapshot(path)
    daemon = Daemon(
        first.config, store, SystemClock(), reloader=ConfigReloader(path, first, min_interval=0.0)
    )
    daemon.start()
    try:
        before = _children(daemon)
        send(first.config.smtp.port, build_mail(subject="GDPR question"))
        wait_until(lambda: _all_done(store, 1), what="the first mail")
        path.write_text(
            base + "[[rules]]\nkind = 'phrase'\nname = 'gdpr'\nlevel = 3\nphrases = ['GDPR']\n"
        )
        second = load_snapshot(path).version
        daemon.request_reload()
        wait_until(lambda: _children(daemon) not in ([], before), what="new worker processes")
        send(first.config.smtp.port, build_mail(subject="GDPR question again"))
        wait_until(lambda: _all_done(store, 2), what="the second mail")
    finally:
        daemon.stop()
    old, new = _items(store)
    assert (old.config_version, old.decision) == (first.version, "ignore")
    assert (new.config_version, new.decision) == (second, "open")


def test_more_than_one_worker_process_needs_postgresql(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('[store]\nurl = "sqlite:///x.db"\n[worker]\nprocesses = 2\n')
    with pytest.raises(ConfigError) as error:
        load_config_file(path)
    assert "worker.processes = 2 needs a PostgreSQL store" in str(error.value)
