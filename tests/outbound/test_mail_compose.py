"""The hand-laid MIME writer, read back by the email package: the two must agree."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage, MIMEPart
from email.policy import default

from gateway.outbound.compose import Recipient, Threading, compose

DATE = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
TEXT = (
    "Hello Jörg,\n\nYour case ESC-000001 is open. 100% = done?\n"
    "From the start: trailing spaces   \n"
    + "a very long line " * 20
    + "\n--=_alt_ looks like a boundary\n.\nend"
)
HTML = "<p>Hello J&ouml;rg, ✓ <b>open</b></p>\n" + "<span>x</span>" * 40


def _compose(**overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "sender": ("Support Desk", "support@example.com"),
        "to": [Recipient("joerg@kunde.example", "Jörg Müller")],
        "cc": [],
        "subject": "[ESC-000001] Re: URGENT: export broken",
        "date": DATE,
        "message_id": "<abc.123@example.com>",
        "threading": Threading("orig@kunde.example", ("first@kunde.example", "orig@kunde.example")),
        "extra_headers": {"Auto-Submitted": "auto-replied"},
        "text": TEXT,
        "html": HTML,
    }
    arguments.update(overrides)
    return compose(**arguments)  # type: ignore[arg-type]


def _content(part: MIMEPart | None) -> str:
    assert part is not None
    # Read straight off the wire, a decoded part keeps its CRLF line ends.
    return str(part.get_content()).replace("\r\n", "\n")


def _parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def test_alternative_parts_round_trip_exactly() -> None:
    raw = _compose()
    message = _parse(raw)
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert _content(plain) == TEXT
    assert _content(html) == HTML
    assert message.defects == [] and plain.defects == [] and html.defects == []


def test_headers_read_back_and_lines_stay_short() -> None:
    raw = _compose()
    message = _parse(raw)
    assert message["From"] == "Support Desk <support@example.com>"
    assert message["To"] == "Jörg Müller <joerg@kunde.example>"
    assert message["Subject"] == "[ESC-000001] Re: URGENT: export broken"
    assert message["Message-ID"] == "<abc.123@example.com>"
    assert message["In-Reply-To"] == "<orig@kunde.example>"
    assert message["References"] == "<first@kunde.example> <orig@kunde.example>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Date"].datetime == DATE
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


def test_text_only_mail_is_a_single_part() -> None:
    message = _parse(_compose(html=None))
    assert message.get_content_type() == "text/plain"
    assert _content(message) == TEXT


def test_non_ascii_subject_and_names_are_encoded_words() -> None:
    subject = "[ESC-000002] " + " ".join(["Dringend: Datenverlust bei Überweisungen ✓"] * 3)
    raw = _compose(subject=subject, cc=[Recipient("chef@kunde.example", "Chef, Ärger & Co")])
    assert raw.isascii()
    message = _parse(raw)
    assert message["Subject"] == subject
    assert message["Cc"].addresses[0].display_name == "Chef, Ärger & Co"
    assert message["Cc"].addresses[0].addr_spec == "chef@kunde.example"


def test_long_recipient_and_reference_lists_fold_between_items() -> None:
    to = [Recipient(f"person{n}@kunde.example", f"Person {n}") for n in range(12)]
    references = tuple(f"ref-{n}-{'x' * 30}@kunde.example" for n in range(8))
    raw = _compose(to=to, threading=Threading(references[-1], references))
    message = _parse(raw)
    assert [a.addr_spec for a in message["To"].addresses] == [r.email for r in to]
    assert message["References"].split() == [f"<{r}>" for r in references]
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


def test_line_breaks_in_values_cannot_forge_headers() -> None:
    raw = _compose(
        subject="Hello\r\nBcc: victim@example.org",
        to=[Recipient("a@kunde.example", "Eve\nBcc: other@example.org")],
    )
    message = _parse(raw)
    assert message["Bcc"] is None
    assert "Bcc: victim@example.org" in message["Subject"]
