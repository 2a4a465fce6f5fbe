from __future__ import annotations

from email.utils import getaddresses

import pytest

from gateway.classify.loop_guard import (
    OWN_MARKER_HEADER,
    LoopGuardSettings,
    auto_reply_block_reason,
)
from parsers.model import Address, ParsedMail

SETTINGS = LoopGuardSettings(
    own_addresses=frozenset({"Escalations@Support.Example.net"}),
    own_domains_for_message_ids=frozenset({"gw.support.example.net"}),
)
CUSTOMER = "Dana Customer <dana@customer.example.com>"
CUSTOMER_PATH = "<dana@customer.example.com>"


def make_mail(
    *extra: tuple[str, str],
    from_: str = CUSTOMER,
    subject: str = "Printer on floor 3 is on fire",
    message_id: str = "abc123@mail.customer.example.com",
    in_reply_to: tuple[str, ...] = (),
    return_path: str | None = CUSTOMER_PATH,
) -> ParsedMail:
    headers: list[tuple[str, str]] = []
    if return_path is not None:
        headers.append(("return-path", return_path))
    headers += [
        ("from", from_),
        ("to", "support@support.example.net"),
        ("subject", subject),
        ("message-id", f"<{message_id}>"),
    ]
    headers += [(name.lower(), value) for name, value in extra]
    parsed_from = [Address(n, a.lower()) for n, a in getaddresses([from_])]
    return ParsedMail(
        from_=parsed_from[0] if parsed_from else None,
        to=(Address("", "support@support.example.net"),),
        cc=(),
        reply_to=(),
        subject=subject,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=in_reply_to,
        date=None,
        text="Please help.",
        html="",
        attachment_names=(),
        headers=tuple(headers),
        parsed_by="stdlib",
    )


def reason_for(mail: ParsedMail, envelope_sender: str | None = None) -> str | None:
    return auto_reply_block_reason(mail, envelope_sender, SETTINGS)


# --- mail that must get an automatic reply ---------------------------------


def test_normal_customer_mail_is_allowed() -> None:
    assert reason_for(make_mail()) is None
    assert reason_for(make_mail(), "dana@customer.example.com") is None


def test_customer_reply_referencing_our_message_id_is_allowed() -> None:
    mail = make_mail(
        ("In-Reply-To", "<case-42.1@gw.support.example.net>"),
        subject="Re: [Case #42] Printer on floor 3 is on fire",
        in_reply_to=("case-42.1@gw.support.example.net",),
    )
    assert reason_for(mail) is None


def test_auto_submitted_no_is_allowed() -> None:
    assert reason_for(make_mail(("Auto-Submitted", "no"))) is None
    assert reason_for(make_mail(("Auto-Submitted", "No (manually sent)"))) is None


@pytest.mark.parametrize(
    "subject",
    [
        "Delivery failed for order 1182, please help",
        "Question about the delivery status of my parcel",
        "Our mail delivery failed twice yesterday",
        "Returned goods: refund still missing",
        "Undeliverable address on invoice?",
        "Re: out of office hours support",
        "Who is the postmaster for our domain?",
    ],
)
def test_subjects_mentioning_delivery_in_prose_are_allowed(subject: str) -> None:
    assert reason_for(make_mail(subject=subject)) is None


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Precedence", "first-class"),
        ("X-Auto-Response-Suppress", "None"),
        # Receipt suppression only; Outlook adds it to person-written mail.
        ("X-Auto-Response-Suppress", "DR, RN, NRN"),
        ("X-Autoreply", "no"),
        ("X-Apple-Action", "FORWARD"),
    ],
)
def test_harmless_header_values_are_allowed(header: str, value: str) -> None:
    assert reason_for(make_mail((header, value))) is None


def test_known_envelope_sender_overrides_return_path_header() -> None:
    # A null Return-Path written by some earlier hop must not matter when the
    # SMTP session told us the real reverse-path.
    mail = make_mail(return_path="<>")
    assert reason_for(mail, "dana@customer.example.com") is None


# --- our own mail ----------------------------------------------------------


def test_marker_header_means_own_mail() -> None:
    reason = reason_for(make_mail((OWN_MARKER_HEADER, "42")))
    assert reason is not None and "gateway itself" in reason


def test_from_own_address_is_blocked_case_insensitively() -> None:
    reason = reason_for(make_mail(from_="Support <escalations@support.EXAMPLE.net>"))
    assert reason is not None and "gateway itself" in reason


def test_sender_header_own_address_is_blocked() -> None:
    mail = make_mail(("Sender", "escalations@support.example.net"))
    assert reason_for(mail) == "message from the gateway itself (sender address)"


def test_own_message_id_domain_is_blocked() -> None:
    mail = make_mail(message_id="case-42.7@GW.support.example.net")
    assert reason_for(mail) == "message from the gateway itself (Message-ID)"


def test_message_id_on_subdomain_is_not_ours() -> None:
    assert reason_for(make_mail(message_id="x@mail.gw.support.example.net")) is None


# --- envelope --------------------------------------------------------------


@pytest.mark.parametrize("envelope", ["", "<>", " < > "])
def test_null_envelope_sender_is_a_bounce(envelope: str) -> None:
    assert reason_for(make_mail(), envelope) == "empty envelope sender (bounce)"


@pytest.mark.parametrize("return_path", ["<>", "", "< >"])
def test_null_return_path_used_when_envelope_unknown(return_path: str) -> None:
    mail = make_mail(return_path=return_path)
    assert reason_for(mail, None) == "empty envelope sender (bounce)"


def test_missing_return_path_with_unknown_envelope_is_not_a_bounce() -> None:
    assert reason_for(make_mail(return_path=None), None) is None


def test_null_from_address_is_a_bounce() -> None:
    mail = make_mail(from_="MAILER-DAEMON <>", return_path=None)
    assert reason_for(mail) == "null From address (bounce)"


# --- header flags ----------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("Auto-Submitted", "auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted", "Auto-Generated; owner-email=x@y", "Auto-Submitted: auto-generated"),
        ("Auto-Submitted", "auto-notified", "Auto-Submitted: auto-notified"),
        ("Precedence", "bulk", "Precedence: bulk"),
        ("Precedence", "Junk", "Precedence: junk"),
        ("Precedence", "list", "Precedence: list"),
        ("Precedence", "auto_reply", "Precedence: auto_reply"),
        ("X-Precedence", "bulk", "X-Precedence: bulk"),
        ("List-Id", "Support chatter <chatter.lists.example.com>", "List-Id present"),
        ("List-Unsubscribe", "<mailto:leave@lists.example.com>", "List-Unsubscribe present"),
        ("List-Post", "<mailto:chatter@lists.example.com>", "List-Post present"),
        ("List-Subscribe", "<mailto:join@lists.example.com>", "List-Subscribe present"),
        ("Mailing-List", "contact help@lists.example.com; run by ezmlm", "Mailing-List present"),
        ("X-MLServer", "fml [fml 4.0.3]", "X-MLServer present (list server)"),
        ("X-BeenThere", "chatter@lists.example.com", "X-BeenThere present (list server)"),
        ("X-Autoreply", "yes", "X-Autoreply header"),
        ("X-Autorespond", "Out of office", "X-Autorespond header"),
        ("X-AutoReply-From", "dana@customer.example.com", "X-AutoReply-From header"),
        ("X-Mail-Autoreply", "dana@customer.example.com", "X-Mail-Autoreply header"),
        ("X-Autogenerated", "Reply", "X-Autogenerated header"),
        ("X-FC-MachineGenerated", "true", "X-FC-MachineGenerated header"),
        ("X-Loop", "helpdesk@customer.example.com", "X-Loop header"),
        ("X-Auto-Response-Suppress", "All", "X-Auto-Response-Suppress asks for none"),
        (
            "X-Auto-Response-Suppress",
            "DR, OOF, AutoReply",
            "X-Auto-Response-Suppress asks for none",
        ),
        (
            "X-MS-Exchange-Generated-Message-Source",
            "Mailbox Rules Agent",
            "Exchange-generated message",
        ),
        ("X-MS-Exchange-Message-Is-Ndr", "", "Exchange non-delivery report"),
        (
            "X-MS-Exchange-Inbox-Rules-Loop",
            "dana@customer.example.com",
            "auto-forwarded by an inbox rule",
        ),
        ("X-MS-Exchange-Organization-AutoForwarded", "true", "auto-forwarded by Exchange"),
        ("X-Apple-Action", "VACATION", "Apple vacation reply"),
        ("X-Failed-Recipients", "gone@example.org", "X-Failed-Recipients present (bounce)"),
    ],
)
def test_header_rules(header: str, value: str, expected: str) -> None:
    assert reason_for(make_mail((header, value))) == expected


def test_any_repeated_header_value_can_block() -> None:
    mail = make_mail(("Precedence", "first-class"), ("Precedence", "bulk"))
    assert reason_for(mail) == "Precedence: bulk"


# --- report media types ----------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (
            'multipart/report; report-type="delivery-status"; boundary="b1"',
            "delivery status notification (multipart/report)",
        ),
        ("Multipart/Report; Report-Type=feedback-report; boundary=b1", "feedback report (ARF)"),
        (
            "multipart/report; report-type=disposition-notification; boundary=b1",
            "read receipt (MDN)",
        ),
        ("multipart/report; boundary=b1", "machine-generated report (multipart/report)"),
        ("message/delivery-status", "delivery status notification (message/delivery-status)"),
        ("message/feedback-report", "feedback report (ARF)"),
    ],
)
def test_report_content_types(content_type: str, expected: str) -> None:
    assert reason_for(make_mail(("Content-Type", content_type))) == expected


def test_ordinary_multipart_is_allowed() -> None:
    assert reason_for(make_mail(("Content-Type", "multipart/mixed; boundary=x"))) is None


# --- machine senders -------------------------------------------------------


@pytest.mark.parametrize(
    ("from_", "expected"),
    [
        (
            "Mail Delivery System <MAILER-DAEMON@mx.example.org>",
            "sender is mailer-daemon/postmaster",
        ),
        ("MAILER-DAEMON", "sender is mailer-daemon/postmaster"),
        ("postmaster@example.org", "sender is mailer-daemon/postmaster"),
        ("post_master@vtext.example.com", "sender is mailer-daemon/postmaster"),
        ("Shop <noreply@shop.example.com>", "sender is a no-reply address"),
        ("no-reply@shop.example.com", "sender is a no-reply address"),
        ("do-not-reply@shop.example.com", "sender is a no-reply address"),
        ("donotreply@shop.example.com", "sender is a no-reply address"),
        ("bounces+1234-dana=customer.example.com@mail.example.net", "sender is a bounce address"),
        ("bounce@example.net", "sender is a bounce address"),
    ],
)
def test_machine_from_addresses(from_: str, expected: str) -> None:
    assert reason_for(make_mail(from_=from_)) == expected


def test_machine_sender_header() -> None:
    mail = make_mail(("Sender", "noreply@tickets.example.com"))
    assert reason_for(mail) == "sender is a no-reply address"


def test_machine_return_path_when_envelope_unknown() -> None:
    mail = make_mail(return_path="<MAILER-DAEMON>")
    assert reason_for(mail) == "sender is mailer-daemon/postmaster"


def test_machine_envelope_sender() -> None:
    mail = make_mail()
    assert reason_for(mail, "bounces-42@lists.example.org") == "sender is a bounce address"


@pytest.mark.parametrize(
    "from_", ["bouncer.jones@example.com", "noreplyguy@example.com", "postmasters-r-us@x.org"]
)
def test_people_with_lookalike_local_parts_are_allowed(from_: str) -> None:
    assert reason_for(make_mail(from_=from_)) is None


# --- subject heuristics (last resort) --------------------------------------


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("Undelivered Mail Returned to Sender", "bounce"),
        ("Delivery Status Notification (Failure)", "bounce"),
        ("Mail delivery failed: returning message to sender", "bounce"),
        ("Returned mail: see transcript for details", "bounce"),
        ("Undeliverable: Printer on fire", "bounce"),
        ("Undeliverable Message", "bounce"),
        ("failure notice", "bounce"),
        ("Delayed Mail (still being retried)", "bounce"),
        ("Unzustellbar: Drucker brennt", "bounce"),
        ("Non remis : Imprimante", "bounce"),
        ("complaint about message from 192.0.2.1", "abuse complaint"),
        ("Out of Office: Printer on fire", "out-of-office reply"),
        ("Automatic reply: Printer on fire", "out-of-office reply"),
        ("Autoreply: Printer on fire", "out-of-office reply"),
        ("Auto reply: Nyaan", "out-of-office reply"),
        ("Abwesenheitsnotiz: Drucker brennt", "out-of-office reply"),
        ("Automatische Antwort: Drucker brennt", "out-of-office reply"),
        ("Réponse automatique : Imprimante", "out-of-office reply"),
        ("Respuesta automática: Impresora", "out-of-office reply"),
        ("自動応答: プリンター", "out-of-office reply"),
    ],
)
def test_subject_heuristics(subject: str, kind: str) -> None:
    reason = reason_for(make_mail(subject=subject))
    assert reason is not None and reason.endswith(kind)


# --- ordering and settings -------------------------------------------------


def test_own_mail_reason_wins_over_other_signals() -> None:
    mail = make_mail((OWN_MARKER_HEADER, "42"), ("Auto-Submitted", "auto-replied"))
    reason = reason_for(mail, "")
    assert reason is not None and "gateway itself" in reason


def test_settings_are_normalised() -> None:
    assert SETTINGS.own_addresses == frozenset({"escalations@support.example.net"})
    settings = LoopGuardSettings(frozenset(), frozenset({" GW.Example.NET "}))
    assert settings.own_domains_for_message_ids == frozenset({"gw.example.net"})
