"""What our own mail carries so we know it again: the marker header, the [KEY] tag and
the reply prefixes clients put before our subjects.

Written by the outbox; read by the loop guard (is this our own mail coming back?) and
by threading (which case does this reply belong to?).
"""

from __future__ import annotations

import re

# Stamped on every mail the gateway sends, so a copy coming back to us (a
# forward, a list echo, a misrouted reply) is recognised without guessing.
OWN_MARKER_HEADER = "X-Escalation-Gateway-Case"

# Reply and forward prefixes in the languages our customers write in; Outlook and
# others stack them ("AW: RE: Fwd:"), so they are stripped repeatedly.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|antwort|ref|rif|r|res|odp|ynt|fw|fwd|wg|tr|rv|enc|vl|doorst)"
    r"(?:\[\d+\])?\s*[:\uff1a]\s*)+",  # \uff1a: the full-width colon of CJK clients
    re.IGNORECASE,
)


def strip_reply_prefixes(subject: str) -> str:
    return _PREFIX.sub("", subject).strip()


def case_tag_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"\[?\b({re.escape(prefix)}-\d{{3,}})\b\]?")
