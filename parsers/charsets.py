"""Text of uncertain charset: header values (RFC 2047 words, raw 8-bit) and body bytes.

Real mail mislabels its charset often (GB2312 that is GB18030, Latin-1 that is
cp1252, ISO-2022-JP labelled ASCII); these functions pick the reading that makes
sense and never raise.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterator

__all__ = [
    "decode_8bit",
    "decode_bytes",
    "decode_encoded_words",
    "decode_header_value",
    "is_fallback",
    "looks_misdecoded",
    "unfold",
]

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")

_FOLD = re.compile(r"\r?\n(?=[ \t])")

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


def unfold(value: str) -> str:
    return _FOLD.sub("", value)


def decode_header_value(value: str) -> str:
    """Unfold a raw header value, recover raw 8-bit bytes and decode RFC 2047 words."""
    return decode_encoded_words(_FOLD.sub("", decode_8bit(value))).strip()


def decode_8bit(value: str) -> str:
    # The bytes parser smuggles undeclared 8-bit header bytes through as surrogates.
    try:
        as_bytes = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        as_bytes = value.encode("utf-8", "replace")
    return decode_bytes(as_bytes, None)[0]


def decode_encoded_words(text: str) -> str:
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


def looks_misdecoded(text: str) -> bool:
    if "\ufffd" in text or "\x1b" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def is_fallback(declared: str | None, used: str) -> bool:
    wanted = (declared or "").strip().strip("\"'").lower()
    return used not in ("ascii", "utf-8", wanted, _CHARSET_UPGRADES.get(wanted))
