"""Mail without a Message-ID, fetched again over IMAP, is still one case (real Dovecot)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.clock import FakeClock
from store.db import Store
from tests.support.dovecot import DovecotServer
from tests.support.imap_gateway import PASSWORD, USER, ImapGateway, imap_config, urgent
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until
from tests.work.dedup_mails import TRACE, without_message_id


@pytest.fixture
def gateway(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock, dovecot_server: DovecotServer
) -> Iterator[ImapGateway]:
    config = imap_config(store, smtp_sink, dovecot_server, initial_scan="all")
    gateway = ImapGateway(config, store, clock, dovecot_server).start()
    yield gateway
    gateway.stop()


def _stored(gateway: ImapGateway, count: int, what: str) -> None:
    wait_until(lambda: len(gateway.items()) == count and gateway.settled(), what=what)


def test_uidvalidity_changes_and_a_second_delivery_give_one_case(
    gateway: ImapGateway, dovecot_server: DovecotServer, smtp_sink: SmtpSink
) -> None:
    mail = without_message_id(urgent(1))
    gateway.append(mail)
    gateway.wait_for_cases(1)
    gateway.wait_all_seen()

    for rescan in (2, 3):
        # The mailbox is rebuilt: the same message under new UIDs, fetched again.
        dovecot_server.reset_uidvalidity(USER, PASSWORD, "INBOX")
        _stored(gateway, rescan, f"rescan {rescan - 1} to store the message again")
    # The MX delivers the mail a second time, with its own trace fields on top.
    gateway.append(TRACE + mail)
    _stored(gateway, 4, "the second delivery")

    items = gateway.items()
    assert [item.state for item in items] == ["done", "duplicate", "duplicate", "duplicate"]
    assert {item.case_id for item in items} == {items[0].case_id}
    assert items[0].message_id is None and items[3].raw == TRACE + mail
    assert gateway.cases() == 1 and gateway.acks() == 1

    # Another mail without a Message-ID is not taken for a copy.
    gateway.append(without_message_id(urgent(2)))
    gateway.wait_for_cases(2)
    smtp_sink.wait_for(2 * 2)  # acknowledgement and owner notification per case
    assert len(smtp_sink.to("alice@acme.example")) == 2
