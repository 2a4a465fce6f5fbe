"""Agent escalation template: subject ``ESCALATION - <brief> - Ticket #<n>`` + labelled fields.

Agents fill the template by hand in whatever client they have, so parsing is
deliberately forgiving: label case, Markdown bold, numbering, bullets, field
order, "Label: value" or a label line followed by a multi-line value, and
HTML bodies (converted to text first).  Quoted history is removed first (see
``parsers.reply``), so a template sent as a reply parses the same; values run
until the next label or a sign-off line.

Ticket resolution: the subject's ticket number wins when present; the body's
"Ticket #" field is used only when the subject carries none.  Leading ``#``
is dropped from ticket values.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from parsers.html_text import html_to_text
from parsers.reply import extract_new_text

__all__ = [
    "FIELD_LABELS",
    "EscalationTemplate",
    "parse_escalation_template",
    "parse_template_body",
    "parse_template_subject",
]

FIELD_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "priority": "Priority",
        "customer": "Customer",
        "ticket": "Ticket #",
        "issue_summary": "Issue Summary",
        "steps_taken": "Steps Taken",
        "customer_impact": "Customer Impact",
        "customer_expectation": "Customer Expectation",
        "additional_context": "Additional Context",
    }
)

# Accepted spellings per field; whitespace inside a label may vary.
_ALIASES: dict[str, tuple[str, ...]] = {
    "priority": ("priority",),
    "customer": ("customer", "customer name"),
    "ticket": ("ticket #", "ticket number", "ticket no.", "ticket no", "ticket id", "ticket"),
    "issue_summary": ("issue summary",),
    "steps_taken": ("steps taken",),
    "customer_impact": ("customer impact",),
    "customer_expectation": ("customer expectations", "customer expectation"),
    "additional_context": ("additional context",),
}
_KEY_BY_ALIAS = {alias: key for key, aliases in _ALIASES.items() for alias in aliases}


def _alias_pattern(alias: str) -> str:
    return r"\s*".join(re.escape(word) for word in alias.split())


_LABEL_ALTERNATION = "|".join(
    _alias_pattern(alias) for alias in sorted(_KEY_BY_ALIAS, key=len, reverse=True)
)
_EMPHASIS = r"(?:\*\*|__|\*|_)"
_LABEL_LINE = re.compile(
    r"^\s*(?:[-*\u2022+\u2013]\s+|\(?\d{1,2}[.)]\s*|#{1,6}\s+)?"  # bullet, numbering or heading
    rf"{_EMPHASIS}?\s*(?P<label>{_LABEL_ALTERNATION})\s*{_EMPHASIS}?"
    # Colon, spaced dash, table-cell gap from HTML conversion, "Ticket #123", or nothing.
    r"(?:\s*[:\uff1a]|\s+[-\u2013\u2014]\s|(?<=#)(?=\s*[\w-]+\s*$)|[ \t]{2,}(?=\S)|\s*$)"
    rf"\s*{_EMPHASIS}?\s*(?P<value>.*?)\s*$",
    re.IGNORECASE,
)
# Sign-offs and the signature delimiter end the last field of a hand-written template.
_STOP_LINE = re.compile(
    r"^\s*(?:--|(?:many\s+)?thanks?(?:\s+you)?[,.!]?|(?:best|kind|warm)?\s*regards,?|"
    r"cheers,?|best,?)\s*$",
    re.IGNORECASE,
)

_REPLY_PREFIX = r"(?:(?:re|fw|fwd|aw|wg|sv|vs|tr|rv)\s*(?:\[\d+\])?\s*:\s*)*"
_DASH = r"[-\u2013\u2014]"
_SUBJECT = re.compile(
    rf"^\s*{_REPLY_PREFIX}\[?\s*escalation\s*\]?\s*(?:{_DASH}+|:)\s*(?P<rest>.*?)\s*$",
    re.IGNORECASE,
)
_SUBJECT_TICKET = re.compile(
    rf"^(?P<brief>.*?)\s*(?:{_DASH}+\s*|^)ticket\s*(?:#|no\.?|number|id)?\s*:?\s*#?\s*"
    r"(?P<ticket>[A-Za-z0-9][\w-]*)[\s.)\]]*$",
    re.IGNORECASE,
)
_TICKET_VALUE = re.compile(r"^#?\s*(?P<ticket>[A-Za-z0-9][\w-]*)")
_LOOKS_HTML = re.compile(r"<\s*(?:html|body|div|p|br|table|span|b|strong)\b", re.IGNORECASE)


@dataclass(frozen=True)
class EscalationTemplate:
    brief: str
    ticket: str | None
    fields: Mapping[str, str] = field(hash=False)

    def missing(self, required: Iterable[str]) -> list[str]:
        """Keys from ``required`` without a value, in the order given.

        The ticket also counts when it came from the subject.  A key that is not
        a template field can never be filled, so it is reported as missing
        rather than breaking classification over a configuration typo.
        """
        result = []
        for key in required:
            present = bool(self.ticket) if key == "ticket" else bool(self.fields.get(key))
            if not present:
                result.append(key)
        return result


def parse_template_subject(subject: str) -> tuple[str, str | None] | None:
    """(brief, ticket) for an escalation subject, or None when it is not one."""
    match = _SUBJECT.match(" ".join(subject.split()))
    if match is None:
        return None
    rest = match.group("rest")
    ticket_match = _SUBJECT_TICKET.match(rest)
    if ticket_match is None:
        return _clean_brief(rest), None
    return _clean_brief(ticket_match.group("brief")), ticket_match.group("ticket")


def parse_template_body(text: str) -> dict[str, str]:
    """Canonical field key -> value for every labelled field with content."""
    if _LOOKS_HTML.search(text):
        text = html_to_text(text)
    text = extract_new_text(text)
    values: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        match = _LABEL_LINE.match(line)
        if match is not None:
            key = _KEY_BY_ALIAS[_normalise_label(match.group("label"))]
            # A repeated label should not clobber what the agent wrote first.
            if _joined(values.get(key)):
                current = None
            else:
                current = values[key] = [match.group("value")]
        elif _STOP_LINE.match(line):
            current = None
        elif current is not None:
            current.append(line.rstrip())
    result = {key: _joined(lines) for key, lines in values.items()}
    if result.get("ticket"):
        result["ticket"] = _normalise_ticket(result["ticket"])
    return {key: value for key, value in result.items() if value}


def parse_escalation_template(subject: str, text: str) -> EscalationTemplate | None:
    """Parse subject and body together; None when the subject is not an escalation subject."""
    parsed_subject = parse_template_subject(subject)
    if parsed_subject is None:
        return None
    brief, subject_ticket = parsed_subject
    fields = parse_template_body(text)
    ticket = subject_ticket or fields.get("ticket") or None
    return EscalationTemplate(brief=brief, ticket=ticket, fields=MappingProxyType(fields))


def _normalise_label(label: str) -> str:
    return re.sub(r"\s*#", " #", " ".join(label.lower().split()))


def _joined(lines: list[str] | None) -> str:
    """lines[0] is the text after the label; the rest are continuation lines."""
    if not lines:
        return ""
    continuation = textwrap.dedent("\n".join(lines[1:])).strip("\n")
    return "\n".join(part for part in (lines[0], continuation) if part.strip()).strip()


def _normalise_ticket(value: str) -> str:
    match = _TICKET_VALUE.match(value)
    return match.group("ticket") if match else value


def _clean_brief(brief: str) -> str:
    return brief.strip(" -\u2013\u2014:")
