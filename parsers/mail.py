"""Raw RFC 5322 bytes -> ParsedMail.

mail-parser is the primary engine (address lists, MIME walk, body decoding).
When it raises or hands back a message without headers, the standard library
parses the bytes instead (``policy.default`` first, ``policy.compat32`` when
the modern header machinery chokes).  Header values, dates, attachment names
and charset recovery go through the helpers below on both paths, so the
rest of the gateway sees the same normalisation whichever parser won.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.policy
import email.utils
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from email.message import Message
from typing import Any

import mailparser

from parsers.html_text import html_to_text
from parsers.model import Address, ParsedMail, UnparseableMail

__all__ = ["decode_bytes", "decode_header_value", "parse_mail"]

# Nested multiparts past this depth are hostile or broken; real mail stays far below it.
_MAX_DEPTH = 40
_MAX_DEFECT_LEN = 160

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ANGLE_ID = re.compile(r"<\s*([^<>\s]+?)\s*>")
_ISO2022_ESCAPE = re.compile(rb"\x1b[$(][@ABDJ]")
# EUC-CN (GB2312) text is pairs of high bytes; Latin-1 prose has lone high bytes
# between ASCII letters.  Telling the two apart keeps "café" from becoming Hanzi.
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_DOUBLE_BYTE_PAIR = re.compile(rb"(?:[\xa1-\xfe][\xa1-\xfe])+")

# Labels that are wrong in practice: the bytes are usually the superset charset.
_CHARSET_UPGRADES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
}
_JAPANESE_NAMES = {"iso2022_jp_ext", "iso-2022-jp-2", "euc-jp", "cp932", "shift-jis"}
_ASCII_NAMES = {"us-ascii", "ascii", "ansi_x3.4-1968", "646", "us"}

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
    if any(_looks_misdecoded(part) for part in (*plain, *html)):
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


def decode_header_value(value: str) -> str:
    """Unfold a raw header value, recover raw 8-bit bytes and decode RFC 2047 words."""
    return _decode_encoded_words(_FOLD.sub("", _decode_8bit(value))).strip()


def _decode_8bit(value: str) -> str:
    # The bytes parser smuggles undeclared 8-bit header bytes through as surrogates.
    try:
        as_bytes = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        as_bytes = value.encode("utf-8", "replace")
    return decode_bytes(as_bytes, None)[0]


def _decode_encoded_words(text: str) -> str:
    out: list[str] = []
    run: list[tuple[str, bytes]] = []  # adjacent encoded words, merged before decoding
    position = 0

    def flush() -> None:
        merged: list[tuple[str, bytes]] = []
        for charset, chunk in run:
            if merged and merged[-1][0] == charset:
                # Multibyte characters are routinely split across adjacent words.
                merged[-1] = (charset, merged[-1][1] + chunk)
            else:
                merged.append((charset, chunk))
        out.extend(decode_bytes(chunk, charset)[0] for charset, chunk in merged)
        run.clear()

    for match in _ENCODED_WORD.finditer(text):
        gap = text[position : match.start()]
        if gap.strip() or not run:
            flush()
            out.append(gap)
        payload = _decode_word_payload(match.group(2), match.group(3))
        if payload is None:
            flush()
            out.append(match.group(0))
        else:
            run.append((match.group(1).split("*", 1)[0].lower(), payload))
        position = match.end()
    flush()
    out.append(text[position:])
    return "".join(out)


def _decode_word_payload(kind: str, payload: str) -> bytes | None:
    try:
        encoded = payload.encode("ascii")
        if kind in "bB":
            return base64.b64decode(encoded + b"=" * (-len(encoded) % 4))
        return binascii.a2b_qp(encoded, header=True)
    except (ValueError, binascii.Error):
        return None


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
    for name, addr in email.utils.getaddresses([_decode_8bit(v) for v in raw_values]):
        if addr.strip():
            display = _fold_whitespace(_decode_encoded_words(name))
            result.append(Address(name=display, email=addr.strip().lower()))
    return tuple(result)


# -- bodies and charsets -----------------------------------------------------------------------


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, str]:
    """Decode text of uncertain charset; returns (text, codec used).  Never raises."""
    candidates = list(_charset_candidates(data, declared))
    for candidate in candidates:
        if candidate == "cp1252" and _mostly_utf8(data):
            # UTF-8 with a stray or truncated byte reads far better than cp1252 mojibake.
            return data.decode("utf-8", "replace"), "utf-8"
        try:
            return data.decode(candidate), candidate
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1"), "latin-1"


def _mostly_utf8(data: bytes) -> bool:
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ord(ch) > 0x7F) - bad
    return good >= 4 * bad


def _charset_candidates(data: bytes, declared: str | None) -> Iterator[str]:
    label = (declared or "").strip().strip("\"'").lower()
    label = _CHARSET_UPGRADES.get(label, label)
    if _ISO2022_ESCAPE.search(data) and not re.sub(r"[-_]", "", label).startswith("iso2022"):
        # ISO-2022-JP is 7-bit, so an ASCII label "decodes" it into escape-sequence noise.
        yield "iso2022_jp_ext"
    if label and label not in _ASCII_NAMES and label != "unknown-8bit" and _known_codec(label):
        yield label
    if label in _ASCII_NAMES or not label:
        yield "ascii"
    yield "utf-8"
    if _looks_double_byte(data):
        yield "euc_jp" if _looks_japanese(data) else "gb18030"
    if label in _JAPANESE_NAMES:
        yield "cp932"
    yield "cp1252"


def _known_codec(label: str) -> bool:
    try:
        codecs.lookup(label)
    except LookupError:
        return False
    return True


def _looks_double_byte(data: bytes) -> bool:
    runs = _HIGH_RUN.findall(data)
    return bool(runs) and all(_DOUBLE_BYTE_PAIR.fullmatch(run) for run in runs)


def _looks_japanese(data: bytes) -> bool:
    # GB2312 and EUC-JP share the byte layout, but only Japanese prose is full of kana.
    try:
        text = data.decode("euc_jp")
    except UnicodeDecodeError:
        return False
    wide = [ch for ch in text if ord(ch) > 0x2FFF]
    kana = [ch for ch in wide if "\u3040" <= ch <= "\u30ff"]
    return bool(wide) and len(kana) * 4 >= len(wide)


def _looks_misdecoded(text: str) -> bool:
    if "\ufffd" in text or "\x1b" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
        if _is_fallback(declared, used):
            defects.append(f"charset fallback: declared {declared or 'none'}, decoded as {used}")
        (html if content_type == "text/html" else plain).append(text)
    return plain, html


def _is_fallback(declared: str | None, used: str) -> bool:
    wanted = (declared or "").strip().strip("\"'").lower()
    return used not in ("ascii", "utf-8", wanted, _CHARSET_UPGRADES.get(wanted))


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
            probe[name] = _FOLD.sub("", _decode_8bit(value))
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
