"""Building realistic test mail as bytes."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid


def build_mail(
    *,
    sender: str = "Alice Customer <alice@acme.example>",
    to: str = "support@example.com",
    cc: str | None = None,
    subject: str = "Problem with the invoice export",
    body: str = "Hello,\n\nthe invoice export fails since this morning.\n\nAlice\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
    date: datetime | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="acme.example")
    message["Date"] = format_datetime(date or datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    if html is not None and not body:
        message.set_content(html, subtype="html")  # HTML-only, as some clients send
    else:
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
    # Mail clients copy ids into In-Reply-To unfolded; 78-column folding would encode them.
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n", max_line_length=998))


def send(
    port: int,
    raw: bytes,
    mail_from: str = "alice@acme.example",
    rcpt: tuple[str, ...] = ("support@example.com",),
) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(mail_from, list(rcpt), raw)
