"""Lead commands tried as an attacker would, through the real SMTP listener.

One test (or two) per point of the hardening: the topmost Authentication-Results
only, DKIM aligned with From, no replays, tokens bound to their recipient, nothing
told to outsiders, no first response from a reply that did nothing, and refusals
logged at WARNING and counted in /metrics. Each case is opened as in
test_lead_commands_smtp.py: Acme's named lead Lee owns it at level 2.
"""

from __future__ import annotations

import email
import hashlib
import hmac
import logging
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from gateway.clock import FakeClock
from store.db import Store
from store.models import CaseEvent, Setting
from tests.conftest import make_config
from tests.flows.test_lead_commands_smtp import (
    ALICE,
    LEE,
    case,
    lead_reply,
    open_case,
    send_as,
)
from tests.support.gateway import Gateway, only
from tests.support.mails import build_mail
from tests.support.smtp_sink import ReceivedMail, SmtpSink

BORDER = "mx.example.com"
MALLORY = "mallory@evil.example"


def _start(
    config_overrides: dict[str, object], store: Store, sink: SmtpSink, clock: FakeClock
) -> Gateway:
    gw = Gateway(make_config(store, sink, **config_overrides), store, sink, clock)
    gw.daemon.start()
    return gw


@pytest.fixture
def strict(store: Store, smtp_sink: SmtpSink, clock: FakeClock) -> Iterator[Gateway]:
    """Commands must also be vouched for by our border MTA."""
    leads = {"require_authentication": True, "trusted_authserv_ids": [BORDER]}
    gw = _start({"leads": leads}, store, smtp_sink, clock)
    yield gw
    gw.daemon.stop()


@pytest.fixture
def watched(store: Store, smtp_sink: SmtpSink, clock: FakeClock) -> Iterator[Gateway]:
    """The default lead settings, with /metrics on a free port."""
    gw = _start({"monitoring": {"enabled": True, "port": 0}}, store, smtp_sink, clock)
    yield gw
    gw.daemon.stop()


def on_top(raw: bytes, *fields: str) -> bytes:
    """The mail as our border hands it on: the fields it adds sit above all others."""
    return b"".join(f"{field}\r\n".encode() for field in fields) + raw


def lee_sets_level_3(gw: Gateway, border_verdict: str) -> None:
    """Lee answers a new case's notification with `level: 3`; the border MTA's verdict on
    that answer is on top."""
    notification = open_case(gw)
    raw = on_top(
        lead_reply(notification, "level: 3\n"),
        f"Authentication-Results: {BORDER}; {border_verdict}",
    )
    send_as(gw, raw, LEE, str(notification.message["Reply-To"]))


def refusals(gw: Gateway, key: str = "ESC-000001") -> list[CaseEvent]:
    return [e for e in gw.events(case(gw, key)) if e.kind == "command_refused"]


def refusal_codes(gw: Gateway, key: str = "ESC-000001") -> list[str]:
    return [str(e.data.get("code")) for e in refusals(gw, key)]


# -- 1. only the topmost Authentication-Results of our border counts -------------------


def test_lower_authentication_results_with_our_id_is_ignored(strict: Gateway) -> None:
    notification = open_case(strict)
    reply_to = str(notification.message["Reply-To"])
    # The sender wrote a passing result in our border's name; the border added its own
    # (a failure) on top, as every MTA prepends.
    raw = lead_reply(
        notification,
        "level: 3\n",
        headers={"Authentication-Results": f"{BORDER}; dkim=pass header.d=example.com"},
    )
    raw = on_top(
        raw,
        f"Authentication-Results: {BORDER}; dkim=fail (signature did not verify) "
        "header.d=example.com; dmarc=fail header.from=example.com",
        "Received: from mail.example.com by mx.example.com; Mon, 23 Nov 2026 14:00:01 +0000",
    )
    send_as(strict, raw, LEE, reply_to)

    assert case(strict).level == 2
    [refused] = refusals(strict)
    assert "mx.example.com found dkim=fail for example.com, dmarc=fail for example.com" in (
        refused.detail
    )
    assert refusal_codes(strict) == ["not_authenticated"]
    notice = strict.sink.to(LEE)[-1]
    assert "was not applied" in notice.text


def test_topmost_aligned_pass_is_accepted(strict: Gateway) -> None:
    lee_sets_level_3(strict, "dkim=pass header.d=example.com")
    assert case(strict).level == 3
    assert refusals(strict) == []


# -- 2. a pass counts only when it is aligned with the From domain ---------------------


def test_dkim_pass_of_another_domain_is_refused(strict: Gateway) -> None:
    lee_sets_level_3(strict, "dkim=pass header.d=evil.example; dmarc=fail header.from=example.com")

    assert case(strict).level == 2
    [refused] = refusals(strict)
    assert (
        "mx.example.com found dkim=pass for evil.example, dmarc=fail for example.com: "
        "no pass for the From domain example.com"
    ) in refused.detail
    assert refusal_codes(strict) == ["not_aligned"]


def test_dmarc_pass_for_the_from_domain_is_accepted(strict: Gateway) -> None:
    lee_sets_level_3(strict, "dkim=pass header.d=esp.example; dmarc=pass header.from=example.com")
    assert case(strict).level == 3


# -- 3. a command mail is applied once per case, whatever was added to it -------------


def test_replayed_command_mail_does_nothing(gateway: Gateway) -> None:
    notification = open_case(gateway)
    raw = lead_reply(notification, "level: 3\n")
    send_as(gateway, raw, LEE, str(notification.message["Reply-To"]))
    assert (case(gateway).level, case(gateway).owner_email) == (3, "oncall@example.com")
    # The new owner moves it back, so a replay would visibly move it again.
    handover = gateway.sink.to("oncall@example.com")[-1]
    send_as(
        gateway,
        lead_reply(handover, "level: 2\n", sender="On-call Engineer <oncall@example.com>"),
        "oncall@example.com",
        str(handover.message["Reply-To"]),
    )
    assert case(gateway).level == 2
    mails_before = len(gateway.sink.mails)

    # What a second MX hop delivers: the same mail with one more Received line.
    again = on_top(raw, "Received: from mx2.example.com by mx.example.com; 23 Nov 2026 14:09 +0000")
    send_as(gateway, again, LEE, str(notification.message["Reply-To"]))
    # A kept copy with the same Message-ID and other commands.
    message_id = str(email.message_from_bytes(raw)["Message-ID"])
    tampered = lead_reply(notification, "level: 4\nclose\n", message_id=message_id)
    send_as(gateway, tampered, LEE, str(notification.message["Reply-To"]))

    current = case(gateway)
    assert (current.level, current.state) == (2, "open")
    assert len(gateway.sink.mails) == mails_before  # no confirmation, no notices
    changes = [e for e in gateway.events(current) if e.kind == "level_changed"]
    assert len(changes) == 2
    assert "replayed" in refusal_codes(gateway)
    assert f"Message-ID {message_id.strip('<>')} was already applied on ESC-000001" in (
        refusals(gateway)[-1].detail
    )


# -- 4. a refusal tells outsiders nothing and mails nobody outside the case ------------


@pytest.mark.parametrize(
    "sender", [f"Mallory <{MALLORY}>", "Victor Victim <victim@elsewhere.example>"]
)
def test_guessed_key_from_outsider_gets_no_mail(gateway: Gateway, sender: str) -> None:
    open_case(gateway, "Invoice export broken")
    before = len(gateway.sink.mails)
    guessed = "support+ESC-000001.000000000000@example.com"
    raw = build_mail(sender=sender, to=guessed, subject="Re: [ESC-000001]", body="resolve\n")
    send_as(gateway, raw, MALLORY, guessed)

    assert case(gateway).state == "open"
    assert len(gateway.sink.mails) == before  # nobody was mailed
    assert not any("Invoice export broken" in m.subject for m in gateway.sink.to(MALLORY))
    [refused] = refusals(gateway)
    address = email.utils.parseaddr(sender)[1]
    assert f"{address} holds no lead role on ESC-000001 (no refusal mail)" == refused.detail
    assert refusal_codes(gateway) == ["no_role"]


def test_refusal_goes_only_to_the_lead_it_names(gateway: Gateway) -> None:
    open_case(gateway)
    forged = build_mail(
        sender=f"Lee Lead <{LEE}>",
        subject="Re: [ESC-000001] Invoice export broken",
        body="resolve\n",
    )
    # The envelope says Mallory; the refusal still only goes to the From on the case.
    send_as(gateway, forged, MALLORY, "support@example.com")
    notice = only([m for m in gateway.sink.mails if "was not applied" in m.text])
    assert notice.rcpt_tos == [LEE]
    assert gateway.sink.to(MALLORY) == []


# -- 5. tokens are bound to the person they were sent to --------------------------------


def test_token_copied_to_the_customer_stops_working(gateway: Gateway) -> None:
    notification = open_case(gateway)
    reply_to = str(notification.message["Reply-To"])
    copied = lead_reply(notification, "status: investigating\n", cc=f"Alice <{ALICE}>")
    send_as(gateway, copied, LEE, reply_to)
    assert case(gateway).state == "investigating"
    confirmation = gateway.sink.to(LEE)[-1]

    # Alice now holds Lee's token (in To and References) and forges Lee's From.
    forged = lead_reply(notification, "resolve\n")
    send_as(gateway, forged, ALICE, reply_to)
    assert case(gateway).state == "investigating"
    [refused] = refusals(gateway)
    assert "this reply token was retired at" in refused.detail
    assert "a reply carrying it was copied to alice@acme.example" in refused.detail
    assert "your reply was copied to alice@acme.example" in confirmation.text
    assert str(confirmation.message["Reply-To"]) != reply_to

    # Lee's own next reply, to the confirmation, carries a fresh token and works.
    send_as(
        gateway, lead_reply(confirmation, "resolve\n"), LEE, str(confirmation.message["Reply-To"])
    )
    assert case(gateway).state == "monitoring"


def test_token_works_only_from_the_address_it_was_sent_to(gateway: Gateway) -> None:
    notification = open_case(gateway)  # to Lee
    manager = "support-manager@example.com"  # a level 2 manager: a role on the case
    raw = lead_reply(notification, "resolve\n", sender=f"Support Manager <{manager}>")
    send_as(gateway, raw, manager, str(notification.message["Reply-To"]))
    assert case(gateway).state == "open"
    [refused] = refusals(gateway)
    assert f"the reply token was sent to {LEE} and works only from that address" in (refused.detail)


def test_staff_mail_to_several_people_carries_a_token_each(gateway: Gateway) -> None:
    notification = open_case(gateway)
    send_as(
        gateway, lead_reply(notification, "level: 3\n"), LEE, str(notification.message["Reply-To"])
    )
    manager = "support-manager@example.com"  # level 2's manager is told of the move

    def moved(mails: list[ReceivedMail]) -> ReceivedMail:
        return only([m for m in mails if "moved from level 2 to level 3" in m.text])

    to_lee, to_manager = moved(gateway.sink.to(LEE)), moved(gateway.sink.to(manager))
    assert (to_lee.rcpt_tos, to_manager.rcpt_tos) == ([LEE], [manager])
    assert to_lee.message["Reply-To"] != to_manager.message["Reply-To"]
    # Lee cannot use the manager's copy.
    send_as(gateway, lead_reply(to_manager, "close\n"), LEE, str(to_manager.message["Reply-To"]))
    assert case(gateway).state != "closed"
    assert f"the reply token was sent to {manager}" in refusals(gateway)[-1].detail


def test_old_shared_token_is_refused_with_a_way_forward(gateway: Gateway) -> None:
    open_case(gateway)
    with gateway.store.session() as session:
        secret = session.scalar(select(Setting.value).where(Setting.key == "reply_token_secret"))
    assert secret
    old = hmac.new(secret.encode(), b"ESC-000001", hashlib.sha256).hexdigest()[:12]
    address = f"support+ESC-000001.{old}@example.com"
    raw = build_mail(
        sender=f"Lee Lead <{LEE}>", to=address, subject="Re: [ESC-000001] x", body="resolve\n"
    )
    send_as(gateway, raw, LEE, address)
    assert case(gateway).state == "open"
    notice = gateway.sink.to(LEE)[-1]
    assert "the reply address is of the old kind, shared by everyone on ESC-000001" in notice.text
    # The refusal is staff mail with Lee's own token: replying to it works.
    send_as(gateway, lead_reply(notice, "resolve\n"), LEE, str(notice.message["Reply-To"]))
    assert case(gateway).state == "monitoring"


# -- 6. only an accepted reply, or one the customer got, is a first response ----------


def test_reply_whose_commands_all_failed_is_no_first_response(gateway: Gateway) -> None:
    notification = open_case(gateway)
    body = "level: 5\nstatus: sleeping\neta: whenever\nowner: nobody@example.com\n"
    send_as(gateway, lead_reply(notification, body), LEE, str(notification.message["Reply-To"]))
    current = case(gateway)
    assert current.first_responded_at is None
    assert current.state == "open"
    [summary] = [e for e in gateway.events(current) if e.kind == "command_reply"]
    assert summary.detail.startswith("0 applied, 4 rejected")


def test_failed_reply_copied_to_the_customer_is_a_first_response(gateway: Gateway) -> None:
    notification = open_case(gateway)
    raw = lead_reply(notification, "level: 5\n", cc=f"Alice <{ALICE}>")
    send_as(gateway, raw, LEE, str(notification.message["Reply-To"]))
    assert case(gateway).first_responded_at is not None


# -- 7. refusals are WARNING lines with their reason, and counted ----------------------


def _metrics(gw: Gateway) -> dict[tuple[str, str], float]:
    assert gw.daemon.monitoring is not None
    url = f"http://127.0.0.1:{gw.daemon.monitoring.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    return {
        (s.name, s.labels.get("reason", "")): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def test_refusals_are_warnings_and_counted(
    watched: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.leads")
    notification = open_case(watched)
    forged = build_mail(
        sender=f"Lee Lead <{LEE}>", subject="Re: [ESC-000001] Invoice", body="resolve\n"
    )
    send_as(watched, forged, LEE, "support@example.com")
    stranger = build_mail(
        sender=f"Mallory <{MALLORY}>",
        to="support+ESC-000001.000000000000@example.com",
        subject="Re: [ESC-000001]",
        body="resolve\n",
    )
    send_as(watched, stranger, MALLORY, "support+ESC-000001.000000000000@example.com")
    send_as(watched, lead_reply(notification, "ack\n"), LEE, str(notification.message["Reply-To"]))

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "code=no_token" in warnings[0] and "no valid ESC-000001 reply token" in warnings[0]
    assert "code=no_role" in warnings[1] and f"{MALLORY} holds no lead role" in warnings[1]
    applied = [r for r in caplog.records if "lead command mail applied" in r.getMessage()]
    assert [r.levelno for r in applied] == [logging.INFO]

    found = _metrics(watched)
    name = "escalation_gateway_lead_commands_refused_total"
    assert found[(name, "no_token")] == 1
    assert found[(name, "no_role")] == 1
    assert found[(name, "replayed")] == 0
