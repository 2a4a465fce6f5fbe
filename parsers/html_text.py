"""HTML to readable plain text for mail bodies that carry no text/plain part."""

from __future__ import annotations

import html as html_lib
import re

import inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

_BLOCK_BREAK = re.compile(r"<\s*(?:br|/p|/div|/tr|/li|/h[1-6]|hr)\b[^>]*>", re.IGNORECASE)
_INVISIBLE = re.compile(
    r"<\s*(script|style|head|title)\b[^>]*>.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL
)
_TAG = re.compile(r"<[^>]*>")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
# The relaxed profile indents every <div>, and mail clients wrap every line in one.
_CONFIG = ParserConfig(css=CSS_PROFILES["strict"])


def html_to_text(html: str) -> str:
    """Render HTML as text with inscriptis; degrade to tag stripping, never raise."""
    if not html.strip():
        return ""
    try:
        text = inscriptis.get_text(html, _CONFIG)
    except Exception:
        # lxml rejects some inputs outright (odd encodings, NUL bytes); mail must still be readable.
        text = _strip_tags(html)
    return _tidy(text)


def _strip_tags(html: str) -> str:
    text = _INVISIBLE.sub("", html)
    text = _BLOCK_BREAK.sub("\n", text)
    return html_lib.unescape(_TAG.sub("", text))


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return _MANY_BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
