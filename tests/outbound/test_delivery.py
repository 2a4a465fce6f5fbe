"""The outbox sender against a real SMTP sink: leases, retries, dead letters."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select

from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from gateway.outbound.delivery import OutboxSender
from gateway.work.worker import Worker
from store.db import Store
from store.models import OutboxMail
from tests.conftest import make_config
from tests.support.mails import build_mail
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until


def queue_mail(store: Store, sink: SmtpSink, clock: FakeClock) -> None:
    store_inbound(store, build_mail(subject="URGENT: slow smarthost"), source="t", clock=clock)
    Worker(make_config(store, sink), store, clock).process_next()


def test_two_senders_on_one_store_never_send_the_same_mail(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    queue_mail(store, smtp_sink, clock)
    config = make_config(store, smtp_sink).outbound
    first, second = OutboxSender(config, store, clock), OutboxSender(config, store, clock)
    smtp_sink.delay = 0.3
    sending = threading.Thread(target=first.deliver_due)
    sending.start()
    # The first sender holds its claim while the smarthost is slow.
    wait_until(
        lambda: all(m.next_attempt_at > clock.now() for m in outbox(store)),
        what="the first sender's claim",
    )
    assert second.deliver_due() == 0
    sending.join()
    assert len(smtp_sink.wait_for(2)) == 2
    assert {m.state for m in outbox(store)} == {"sent"}


def test_a_temporarily_refused_mail_goes_dead_after_max_attempts(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    queue_mail(store, smtp_sink, clock)
    smtp_sink.refuse_with = "451 4.3.0 try again later"
    sender = OutboxSender(make_config(store, smtp_sink).outbound, store, clock)
    for _ in range(5):  # max_attempts is 3 in the test config; the rest must do nothing
        sender.deliver_due()
        clock.advance(timedelta(hours=1))
    mails = outbox(store)
    assert {(m.state, m.dead_cause, m.attempts) for m in mails} == {("dead", "attempts", 3)}
    assert all("451" in (m.last_error or "") for m in mails)
    assert smtp_sink.mails == []


def test_a_permanent_refusal_ends_the_mail_on_its_first_attempt(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    queue_mail(store, smtp_sink, clock)
    smtp_sink.refuse_with = "554 5.7.1 rejected by policy"
    sender = OutboxSender(make_config(store, smtp_sink).outbound, store, clock)
    assert sender.deliver_due() == 0
    mails = outbox(store)
    assert {(m.state, m.dead_cause, m.attempts) for m in mails} == {("dead", "refused", 1)}
    assert all("554 5.7.1 rejected by policy" in (m.last_error or "") for m in mails)
    clock.advance(timedelta(hours=1))
    smtp_sink.refuse_with = None
    assert sender.deliver_due() == 0
    assert smtp_sink.mails == []


def test_a_kept_connection_dropped_by_the_smarthost_is_replaced_at_once(
    store: Store, clock: FakeClock
) -> None:
    sink = SmtpSink(idle_timeout=0.3)
    sink.start()
    try:
        sender = OutboxSender(make_config(store, sink).outbound, store, clock)
        queue_mail(store, sink, clock)
        assert sender.deliver_due(keep_open=True) == 2
        kept = sender._transport
        # The smarthost drops the idle connection (421); the sender does not know yet.
        time.sleep(0.8)
        queue_mail(store, sink, clock)
        assert sender.deliver_due(keep_open=True) == 2
        assert sender._transport is not None and sender._transport is not kept
    finally:
        sender.close()
        sink.stop()
    assert len(sink.wait_for(4)) == 4
    assert [(m.state, m.attempts) for m in outbox(store)] == [("sent", 1)] * 4


def test_a_kept_connection_carries_the_next_run(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    sender = OutboxSender(make_config(store, smtp_sink).outbound, store, clock)
    queue_mail(store, smtp_sink, clock)
    assert sender.deliver_due(keep_open=True) == 2
    kept = sender._transport
    queue_mail(store, smtp_sink, clock)
    assert sender.deliver_due(keep_open=True) == 2
    assert kept is not None and sender._transport is kept
    sender.close()
    assert sender._transport is None
    assert len(smtp_sink.wait_for(4)) == 4


def outbox(store: Store) -> list[OutboxMail]:
    with store.session() as session:
        return list(session.scalars(select(OutboxMail)))
