"""Building the bytes of an outgoing mail: headers, plain text and an HTML alternative.

The layout is written directly rather than through the email package's generator.
Every mail the gateway sends has the same shape, one text part or a
multipart/alternative of text and HTML, and every header is one we set. The
generator re-folds each header through `email.header.Header` and was the single
largest cost of opening a case (about 0.6 ms of a 7.8 ms case, measured). The parts
that need care still come from the standard library: the Subject, the one header
whose text comes from outside, is folded by the email package's SMTP policy
(encoded words included); names go through `formataddr`; bodies are always
quoted-printable (`binascii.b2a_qp`, which is C); dates through `format_datetime`.
`tests/outbound/test_mail_compose.py` parses the result back with the email package
to hold the two to the same answer.

No line may exceed RFC 5322's 998 characters: smarthosts refuse such mail with a
permanent 500. Quoted-printable lines stay within 76; the Subject is folded; a
display name is cut to _NAME_CHARS; a Message-ID too long for one line is left out
of In-Reply-To and References rather than sent (threading loses one hostile id).
"""

from __future__ import annotations

import secrets
from binascii import b2a_qp
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.policy import SMTP
from email.utils import format_datetime, formataddr

CRLF = "\r\n"
# RFC 5322 2.1.1: lines SHOULD stay within 78 characters. Lists are folded between
# their items only; an item is never split, since folding inside a Message-ID
# confuses some threading code.
_FOLD_AT = 78
# RFC 5322 2.1.1: the hard limit, CRLF not counted.
MAX_LINE = 998
# How much of an inbound subject our subjects echo: enough to recognise the mail by.
ECHOED_SUBJECT_CHARS = 200
# A display name is copied from inbound mail too; even encoded it stays on one line.
_NAME_CHARS = 100
# "In-Reply-To: <" and ">": an id longer than this could not be written on one line.
_MESSAGE_ID_CHARS = MAX_LINE - len("In-Reply-To: <>")
_ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""


@dataclass(frozen=True)
class Threading:
    """The message this mail answers, so mail clients keep the conversation together."""

    in_reply_to: str | None
    references: tuple[str, ...]


def _one_line(value: str) -> str:
    # A header value comes partly from inbound mail (a customer's subject or name);
    # a stray line break in it must never start a header of its own.
    return " ".join(value.split("\r\n")).replace("\r", " ").replace("\n", " ")


def _shortened(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + _ELLIPSIS


def echoed_subject(subject: str) -> str:
    """An inbound subject as our mail repeats it: one line, at most ECHOED_SUBJECT_CHARS."""
    return _shortened(" ".join(_one_line(subject).split()), ECHOED_SUBJECT_CHARS)


def _address(recipient: Recipient) -> str:
    name = _shortened(_one_line(recipient.name), _NAME_CHARS)
    return formataddr((name, recipient.email), charset="utf-8")


def _fits(message_id: str) -> bool:
    return len(message_id) <= _MESSAGE_ID_CHARS


def _folded(name: str, items: Sequence[str], *, comma: bool) -> str:
    words = [f"{item}," if comma and i < len(items) - 1 else item for i, item in enumerate(items)]
    lines: list[str] = []
    line = f"{name}:"
    for index, word in enumerate(words):
        if index and len(line) + 1 + len(word) > _FOLD_AT:
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return CRLF.join(lines)


def _subject_header(subject: str) -> str:
    # The policy folds at 78 and writes encoded words where the text needs them; it
    # splits even a word too long for one line, which a plain fold at spaces cannot.
    folded: str = SMTP.fold("Subject", _one_line(subject))
    first, *rest = folded.removesuffix(CRLF).split(CRLF)
    # The policy can leave the space it folded at on the line before as well as
    # starting the next with one; read back, that is two spaces where there was one.
    return CRLF.join([first.rstrip(), *(" " + line.strip() for line in rest)])


def _text_part(body: str, subtype: str) -> tuple[list[str], str]:
    encoded = b2a_qp(body.replace("\r\n", "\n").encode("utf-8")).decode("ascii")
    headers = [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]
    return headers, encoded.replace("\n", CRLF)


def _part(headers: list[str], body: str) -> str:
    return CRLF.join(headers) + CRLF + CRLF + body


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
    headers = [
        f"From: {_address(Recipient(sender[1], sender[0]))}",
        _folded("To", [_address(r) for r in to], comma=True),
    ]
    if cc:
        headers.append(_folded("Cc", [_address(r) for r in cc], comma=True))
    headers += [
        _subject_header(subject),
        f"Date: {format_datetime(date)}",
        f"Message-ID: {message_id}",
    ]
    if threading.in_reply_to and _fits(threading.in_reply_to):
        headers.append(f"In-Reply-To: <{threading.in_reply_to}>")
    references = [f"<{r}>" for r in threading.references if _fits(r)]
    if references:
        headers.append(_folded("References", references, comma=False))
    headers += [f"{name}: {_one_line(value)}" for name, value in extra_headers.items()]
    headers.append("MIME-Version: 1.0")
    if html is None:
        part_headers, body = _text_part(text, "plain")
        return _part(headers + part_headers, body).encode("ascii")
    # Quoted-printable never writes "=_" ("=" always starts "=XX" or a soft break),
    # so no body line can be mistaken for this boundary.
    boundary = f"=_alt_{secrets.token_hex(12)}"
    headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    parts = [_part(*_text_part(text, "plain")), _part(*_text_part(html, "html"))]
    body = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts) + f"--{boundary}--{CRLF}"
    return _part(headers, body).encode("ascii")
