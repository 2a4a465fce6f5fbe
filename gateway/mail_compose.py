"""Building the bytes of an outgoing mail: headers, plain text and an HTML alternative.

This uses the standard library's compat32 MIME classes rather than EmailMessage with
the modern policy: the modern header registry re-parses every header we set, which
made composing the largest cost of handling a mail, and here we only write headers
whose content we control.
"""

from __future__ import annotations

from binascii import b2a_qp
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import format_datetime, formataddr

# SMTP wants CRLF, and smtplib sends bytes as they are. Headers are folded only past
# RFC 5322's hard limit: folding ids at 78 columns confuses some threading code.
_WIRE = compat32.clone(linesep="\r\n", max_line_length=998)


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""


@dataclass(frozen=True)
class Threading:
    """The message this mail answers, so mail clients keep the conversation together."""

    in_reply_to: str | None
    references: tuple[str, ...]


def _address(name: str, email: str) -> str:
    return formataddr((name, email), charset="utf-8")


def _text_part(body: str, subtype: str) -> MIMENonMultipart:
    # binascii's quoted-printable encoder is C; the email package's is pure Python and
    # was the slowest step of composing a reply.
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(b2a_qp(body.replace("\r\n", "\n").encode("utf-8")).decode("ascii"))
    return part


def compose(
    *,
    sender: tuple[str, str],
    to: Sequence[Recipient],
    cc: Sequence[Recipient],
    subject: str,
    date: datetime,
    message_id: str,
    threading: Threading,
    extra_headers: Mapping[str, str],
    text: str,
    html: str | None,
) -> bytes:
    """Return the message as bytes with CRLF line ends, ready for SMTP."""
    if html is None:
        message: MIMENonMultipart | MIMEMultipart = _text_part(text, "plain")
    else:
        message = MIMEMultipart("alternative")
        message.attach(_text_part(text, "plain"))
        message.attach(_text_part(html, "html"))
    message["From"] = _address(*sender)
    message["To"] = ", ".join(_address(r.name, r.email) for r in to)
    if cc:
        message["Cc"] = ", ".join(_address(r.name, r.email) for r in cc)
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    if threading.in_reply_to:
        message["In-Reply-To"] = f"<{threading.in_reply_to}>"
    if threading.references:
        message["References"] = " ".join(f"<{r}>" for r in threading.references)
    for name, value in extra_headers.items():
        message[name] = value
    return message.as_bytes(policy=_WIRE)
