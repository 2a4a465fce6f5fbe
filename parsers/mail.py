"""Raw RFC 5322 bytes -> ParsedMail.

mail-parser is the primary engine (address lists, MIME walk, body decoding).
When it raises or hands back a message without headers, the standard library
parses the bytes instead (``policy.default`` first, ``policy.compat32`` when
the modern header machinery chokes).  Header values, dates, attachment names
and charset recovery go through the helpers below on both paths, so the
rest of the gateway sees the same normalisation whichever parser won.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from email.message import Message
from typing import Any

import mailparser

from parsers.charsets import (
    decode_8bit,
    decode_bytes,
    decode_encoded_words,
    decode_header_value,
    is_fallback,
    looks_misdecoded,
    unfold,
)
from parsers.html_text import html_to_text
from parsers.model import Address, ParsedMail, UnparseableMail

__all__ = ["decode_bytes", "decode_header_value", "parse_mail"]

# Nested multiparts past this depth are hostile or broken; real mail stays far below it.
_MAX_DEPTH = 40
_MAX_DEFECT_LEN = 160

_ANGLE_ID = re.compile(r"<\s*([^<>\s]+?)\s*>")


_DEFECT_TEXT = {
    "CloseBoundaryNotFoundDefect": "missing final boundary",
    "StartBoundaryNotFoundDefect": "missing start boundary",
    "NoBoundaryInMultipartDefect": "multipart without boundary",
    "MultipartInvariantViolationDefect": "multipart without subparts",
    "MissingHeaderBodySeparatorDefect": "missing header/body separator",
    "FirstHeaderLineIsContinuationDefect": "first header line is a continuation",
}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one message; raises only UnparseableMail, and only when nothing is readable."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise UnparseableMail(f"expected bytes, got {type(raw).__name__}")
    data = bytes(raw)
    if not data.strip():
        raise UnparseableMail("empty message")

    defects: list[str] = []
    try:
        parsed = _parse_with_mailparser(data)
    except Exception as exc:
        parsed = None
        defects.append(f"mail-parser failed: {_describe(exc)}")
    if parsed is not None:
        return parsed
    if not defects:
        defects.append("mail-parser found no headers")

    try:
        return _parse_with_stdlib(data, defects)
    except UnparseableMail:
        raise
    except Exception as exc:
        raise UnparseableMail(f"stdlib failed: {_describe(exc)}") from exc


# -- the two engines ---------------------------------------------------------------------------


def _parse_with_mailparser(data: bytes) -> ParsedMail | None:
    parser: Any = mailparser.parse_from_bytes(data)
    message = parser.message
    if not isinstance(message, Message) or not message.keys():
        return None

    defects: list[str] = []
    plain = [str(p) for p in parser.text_plain]
    html = [str(p) for p in parser.text_html]
    if any(looks_misdecoded(part) for part in (*plain, *html)):
        # mail-parser trusts the declared (or default utf-8) charset; redo from the bytes.
        plain, html = _collect_bodies(message, defects)
        defects.append("body charset repaired")

    doubtful = set()
    for item in parser.address_header_defects:
        doubtful.add(str(item.get("header", "")))
        defects.append(f"address header {item.get('header', '?')}: {item.get('reason', '?')}")
    addresses = {
        # mail-parser escapes undecodable names instead of guessing; reparse those headers.
        name: _addresses_from_header(_raw_values(message, name))
        if name in doubtful
        else _addresses_from_pairs(getattr(parser, name.replace("-", "_") + "_"))
        for name in ("from", "to", "cc", "reply-to")
    }
    fallback_date = parser.date if isinstance(parser.date, datetime) else None
    return _assemble(
        message,
        parsed_by="mail-parser",
        addresses=addresses,
        plain=plain,
        html=html,
        fallback_date=fallback_date,
        defects=defects,
    )


def _parse_with_stdlib(data: bytes, defects: list[str]) -> ParsedMail:
    try:
        modern = email.message_from_bytes(data, policy=email.policy.default)
        return _parse_stdlib_message(modern, list(defects))
    except UnparseableMail:
        raise
    except Exception as exc:
        defects.append(f"stdlib default policy failed: {_describe(exc)}")
    legacy = email.message_from_bytes(data, policy=email.policy.compat32)
    return _parse_stdlib_message(legacy, defects)


def _parse_stdlib_message(message: Message, defects: list[str]) -> ParsedMail:
    if not message.keys():
        raise UnparseableMail("no headers found")
    plain, html = _collect_bodies(message, defects)
    addresses = {
        name: _addresses_from_header(_raw_values(message, name))
        for name in ("from", "to", "cc", "reply-to")
    }
    return _assemble(
        message,
        parsed_by="stdlib",
        addresses=addresses,
        plain=plain,
        html=html,
        fallback_date=None,
        defects=defects,
    )


def _assemble(
    message: Message,
    *,
    parsed_by: str,
    addresses: dict[str, tuple[Address, ...]],
    plain: list[str],
    html: list[str],
    fallback_date: datetime | None,
    defects: list[str],
) -> ParsedMail:
    headers = tuple(
        (name.lower(), decode_header_value(value)) for name, value in _raw_items(message)
    )
    lookup = dict(reversed(headers))  # first occurrence wins

    from_list = addresses["from"]
    from_: Address | None = from_list[0] if from_list else None
    if from_ is None and "from" in lookup:
        from_ = Address(name=_fold_whitespace(lookup["from"]), email="")

    date_value = lookup.get("date", "")
    date = _parse_date(date_value) or fallback_date
    if date_value and date is None:
        defects.append("unparseable date")

    text = _normalise_newlines("\n".join(part.strip("\r\n") for part in plain if part.strip()))
    html_text = _normalise_newlines("\n".join(part for part in html if part.strip()))
    if not text and html_text:
        text = html_to_text(html_text)

    defects.extend(_message_defects(message))
    return ParsedMail(
        from_=from_,
        to=addresses["to"],
        cc=addresses["cc"],
        reply_to=addresses["reply-to"],
        subject=_fold_whitespace(lookup.get("subject", "")),
        message_id=next(iter(_message_ids(lookup.get("message-id", ""))), ""),
        in_reply_to=_message_ids(lookup.get("in-reply-to", "")),
        references=_message_ids(lookup.get("references", "")),
        date=date,
        text=text,
        html=html_text,
        attachment_names=tuple(_attachment_names(message)),
        headers=headers,
        parsed_by=parsed_by,
        defects=tuple(dict.fromkeys(_clip(d) for d in defects)),
    )


# -- headers -----------------------------------------------------------------------------------


def _raw_items(message: Message) -> Iterator[tuple[str, str]]:
    for name, value in message.raw_items():
        yield str(name), str(value)


def _raw_values(message: Message, name: str) -> list[str]:
    return [value for key, value in _raw_items(message) if key.lower() == name]


def _message_ids(value: str) -> tuple[str, ...]:
    ids = _ANGLE_ID.findall(value)
    if not ids:
        # Some clients omit the brackets entirely.
        ids = [token.strip("<>,") for token in value.split() if token.strip("<>,")]
    return tuple(dict.fromkeys(ids))


def _parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except Exception:
        return None
    # RFC 5322 "-0000" (and zone-less dates) mean UTC with no local offset known.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# -- addresses ---------------------------------------------------------------------------------


def _addresses_from_pairs(pairs: object) -> tuple[Address, ...]:
    if not isinstance(pairs, list):
        return ()
    result = []
    for pair in pairs:
        if isinstance(pair, tuple | list) and len(pair) == 2:
            name, addr = (str(item or "") for item in pair)
            if addr.strip():
                result.append(Address(name=_fold_whitespace(name), email=addr.strip().lower()))
    return tuple(result)


def _addresses_from_header(raw_values: list[str]) -> tuple[Address, ...]:
    # Split on the undecoded value: a decoded display name may contain commas.
    result = []
    for name, addr in email.utils.getaddresses([decode_8bit(v) for v in raw_values]):
        if addr.strip():
            display = _fold_whitespace(decode_encoded_words(name))
            result.append(Address(name=display, email=addr.strip().lower()))
    return tuple(result)


# -- bodies and charsets -----------------------------------------------------------------------


def _collect_bodies(message: Message, defects: list[str]) -> tuple[list[str], list[str]]:
    plain: list[str] = []
    html: list[str] = []
    for part in _leaf_parts(message, 0, defects):
        content_type = part.get_content_type()
        if content_type not in ("text/plain", "text/html"):
            continue
        if part.get_content_disposition() == "attachment" or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload.strip():
            continue
        declared = part.get_content_charset()
        text, used = decode_bytes(payload, declared)
        if is_fallback(declared, used):
            defects.append(f"charset fallback: declared {declared or 'none'}, decoded as {used}")
        (html if content_type == "text/html" else plain).append(text)
    return plain, html


def _leaf_parts(part: Message, depth: int, defects: list[str]) -> Iterator[Message]:
    """Leaf MIME parts of this message, not descending into attached messages."""
    if depth > _MAX_DEPTH:
        defects.append("MIME nesting too deep")
        return
    if part.get_content_maintype() == "message":
        return
    if part.is_multipart():
        children = part.get_payload()
        if isinstance(children, list):
            for child in children:
                if isinstance(child, Message):
                    yield from _leaf_parts(child, depth + 1, defects)
        return
    yield part


def _attachment_names(message: Message) -> Iterator[str]:
    for part in message.walk():
        if part.is_multipart():
            continue
        filename = _filename(part)
        if filename:
            name = decode_header_value(str(filename))
            if name:
                yield name


def _filename(part: Message) -> str | None:
    # Parameter parsing on the stored value would turn raw UTF-8 names into U+FFFD.
    probe = Message()
    for name, value in _raw_items(part):
        if name.lower() in ("content-disposition", "content-type"):
            probe[name] = unfold(decode_8bit(value))
    return probe.get_filename()


def _message_defects(message: Message) -> Iterable[str]:
    for part in message.walk():
        for defect in getattr(part, "defects", ()):
            kind = type(defect).__name__
            yield _DEFECT_TEXT.get(kind) or _CAMEL.sub(" ", kind.removesuffix("Defect")).lower()


# -- small utilities ---------------------------------------------------------------------------


def _fold_whitespace(value: str) -> str:
    return " ".join(value.split())


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _describe(exc: BaseException) -> str:
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_DEFECT_LEN else text[: _MAX_DEFECT_LEN - 1] + "…"
