"""Issue 15: a permanent 5xx ends a mail as dead at once, with its reason, visible in
/healthz and /metrics; temporary failures are retried. Real aiosmtpd smarthosts."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from gateway.clock import FakeClock
from gateway.ops.monitoring import MonitoringServer
from gateway.outbound.delivery import OutboxSender
from store.db import Store
from store.models import OutboxMail
from tests.conftest import make_config
from tests.outbound.outbox import queue_pending
from tests.outbound.smarthost import Smarthost
from tests.support.mails import build_mail
from tests.support.smtp_sink import free_port


def queue(store: Store, clock: FakeClock, recipients: list[str], raw: bytes) -> int:
    return queue_pending(
        store,
        clock,
        recipients=recipients,
        raw=raw,
        message_id=f"m{len(raw)}.{len(recipients)}@example.com",
    )


def mail(store: Store, mail_id: int) -> OutboxMail:
    with store.session() as session:
        found = session.get(OutboxMail, mail_id)
        assert found is not None
        return found


def test_500_line_too_long_is_dead_at_once_and_shows_in_health_and_metrics(
    store: Store, clock: FakeClock
) -> None:
    # Bytes as an older release stored them: one header line far over 998 characters.
    too_long = build_mail().replace(b"Subject: ", b"Subject: " + b"x" * 5000, 1)
    with Smarthost() as smarthost:
        config = make_config(
            store, outbound={"port": smarthost.port}, monitoring={"enabled": True, "port": 0}
        )
        sender = OutboxSender(config.outbound, store, clock)
        hostile = queue(store, clock, ["alice@acme.example"], too_long)
        ordinary = queue(store, clock, ["bob@acme.example"], build_mail())
        assert sender.deliver_due() == 1
        clock.advance(timedelta(hours=2))
        assert sender.deliver_due() == 0  # never tried again
        assert smarthost.total() == 1

    dead = mail(store, hostile)
    assert (dead.state, dead.attempts, dead.dead_cause) == ("dead", 1, "refused")
    assert dead.last_error is not None and "500 Line too long" in dead.last_error
    assert mail(store, ordinary).state == "sent"

    monitoring = MonitoringServer(config.monitoring, store, clock, probes={})
    monitoring.start()
    try:
        base = f"http://127.0.0.1:{monitoring.port}"
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            report = json.loads(response.read())
        with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
            metrics = response.read().decode()
    finally:
        monitoring.stop()
    assert report["outbox_dead_mails"] == {"refused": 1, "attempts": 0}
    last = report["outbox_last_dead_mail"]
    assert last["id"] == hostile and last["cause"] == "refused"
    assert "500 Line too long" in last["reason"]
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    assert found[("escalation_gateway_outbox_dead_mails", (("cause", "refused"),))] == 1
    assert found[("escalation_gateway_outbox_mails", (("state", "dead"),))] == 1


def test_refused_recipients_temporary_and_permanent(store: Store, clock: FakeClock) -> None:
    refuse = {
        "gone@kunde.example": "550 5.1.1 no such user",
        "full@kunde.example": "452 4.2.2 mailbox full",
    }
    with Smarthost(refuse=refuse) as smarthost:
        sender = OutboxSender(
            make_config(store, outbound={"port": smarthost.port}).outbound, store, clock
        )
        gone = queue(store, clock, ["gone@kunde.example"], build_mail())
        full = queue(store, clock, ["full@kunde.example"], build_mail(subject="2"))
        some = queue(
            store, clock, ["gone@kunde.example", "ok@kunde.example"], build_mail(subject="3")
        )
        assert sender.deliver_due() == 1
        assert smarthost.to("ok@kunde.example") and not smarthost.to("gone@kunde.example")

    assert (mail(store, gone).state, mail(store, gone).dead_cause) == ("dead", "refused")
    assert "550 5.1.1 no such user" in (mail(store, gone).last_error or "")
    waiting = mail(store, full)
    assert (waiting.state, waiting.attempts) == ("pending", 1)
    assert waiting.next_attempt_at == clock.now() + timedelta(seconds=1)  # retry_initial
    assert "452 4.2.2" in (waiting.last_error or "")
    # Accepted for one recipient: sent, with a note of the one refused.
    partly = mail(store, some)
    assert partly.state == "sent" and "gone@kunde.example: 550" in (partly.last_error or "")


def test_a_smarthost_that_is_down_is_a_temporary_failure(store: Store, clock: FakeClock) -> None:
    config = make_config(store, outbound={"port": free_port()})  # nothing listens there
    mail_id = queue(store, clock, ["alice@acme.example"], build_mail())
    assert OutboxSender(config.outbound, store, clock).deliver_due() == 0
    waiting = mail(store, mail_id)
    assert (waiting.state, waiting.attempts, waiting.dead_cause) == ("pending", 1, None)
    assert waiting.last_error is not None and waiting.last_error.startswith("temporary:")
    with store.session() as session:
        assert session.scalars(select(OutboxMail.lease_holder)).one() is None
