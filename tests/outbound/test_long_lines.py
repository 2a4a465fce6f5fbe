"""Issues 15 and 13.7: no line we send exceeds 998 characters, and long subjects are
folded by the email package and echoed cut short.

The smarthost is a real aiosmtpd server: it answers "500 Line too long" to any DATA
line over 998 characters plus CRLF, as the smarthost in the issue did.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from gateway.clock import FakeClock
from gateway.outbound.compose import ECHOED_SUBJECT_CHARS, Recipient, Threading, compose
from gateway.outbound.delivery import OutboxSender
from store.db import Store
from store.models import OutboxMail
from tests.conftest import make_config
from tests.outbound.outbox import queue_pending
from tests.support.gateway import Gateway, only
from tests.support.mails import build_mail
from tests.support.smtp_sink import ReceivedMail, SmtpSink

HUNDRED_KB = 100_000


@pytest.fixture
def big_mail_gateway(store: Store, smtp_sink: SmtpSink, clock: FakeClock) -> Iterator[Gateway]:
    config = make_config(store, smtp_sink, smtp={"max_message_size": 2_000_000})
    gateway = Gateway(config, store, smtp_sink, clock)
    gateway.daemon.start()
    yield gateway
    gateway.daemon.stop()


def longest_line(raw: bytes) -> int:
    return max(len(line) for line in raw.split(b"\r\n"))


def header_lines(raw: bytes, name: bytes) -> list[bytes]:
    """The physical lines of one header, its folded continuations included."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(head) if line.lower().startswith(name.lower() + b":"))
    end = start + 1
    while end < len(head) and head[end][:1] in (b" ", b"\t"):
        end += 1
    return head[start:end]


@pytest.mark.parametrize(
    "subject",
    [
        "URGENT: " + "x" * HUNDRED_KB,  # one word, no place to fold
        "URGENT: " + "checkout down " * (HUNDRED_KB // 14),
        "URGENT: " + "Überweisung fehlgeschlagen " * (HUNDRED_KB // 27),
    ],
    ids=["one-word", "words", "non-ascii"],
)
def test_a_100_kb_subject_and_body_line_reach_a_smarthost_that_enforces_998(
    big_mail_gateway: Gateway, subject: str
) -> None:
    body = "y" * HUNDRED_KB  # a single line
    big_mail_gateway.send(build_mail(subject=subject, body=body + "\n"))
    big_mail_gateway.settle()

    mails: list[ReceivedMail] = big_mail_gateway.sink.wait_for(2)
    ack = only(big_mail_gateway.sink.to("alice@acme.example"))
    for mail in mails:
        assert longest_line(mail.raw) <= 998
        # Folded by the policy at 78 columns, never one long line.
        assert all(len(line) <= 78 for line in header_lines(mail.raw, b"Subject"))
        tag, _, echoed = mail.subject.partition(" ")
        assert tag == "[ESC-000001]"
        assert len(echoed) <= ECHOED_SUBJECT_CHARS and echoed.endswith("\u2026")
        assert subject.startswith(echoed.removesuffix("\u2026"))
    assert "ESC-000001" in ack.text
    with big_mail_gateway.store.session() as session:
        assert {m.state for m in session.scalars(select(OutboxMail))} == {"sent"}


def test_compose_keeps_every_line_within_998_whatever_it_is_given(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    huge_id = "a" * HUNDRED_KB + "@kunde.example"
    text, html = "t" * HUNDRED_KB, "<p>" + "h" * HUNDRED_KB + "</p>"
    raw = compose(
        sender=("Support", "support@example.com"),
        to=[Recipient("joerg@kunde.example", "Jörg " * 20_000)],
        cc=[Recipient("x@kunde.example", "X" * HUNDRED_KB)],
        subject="[ESC-000001] " + "z" * HUNDRED_KB,
        date=clock.now(),
        message_id="<long-lines@example.com>",
        threading=Threading(huge_id, ("ok@kunde.example", huge_id)),
        extra_headers={"Auto-Submitted": "auto-replied"},
        text=text,
        html=html,
    )
    assert longest_line(raw) <= 998
    # The id too long for any line is left out; the others still thread.
    assert b"<ok@kunde.example>" in raw and huge_id.encode() not in raw

    queue_pending(
        store,
        clock,
        recipients=["joerg@kunde.example"],
        raw=raw,
        message_id="long-lines@example.com",
        subject="long lines",
    )
    assert OutboxSender(make_config(store, smtp_sink).outbound, store, clock).deliver_due() == 1
    received = only(smtp_sink.wait_for(1))
    # Both 100 kB lines arrive whole: quoted-printable carried them in lines of 76.
    assert received.text == text
    html_part = received.message.get_body(("html",))
    assert html_part is not None and html_part.get_content().replace("\r\n", "\n") == html
