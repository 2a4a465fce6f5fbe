"""Inbound mail parsing: raw bytes to ParsedMail, reply trimming and the escalation template."""

from parsers.escalation_template import (
    FIELD_LABELS,
    EscalationTemplate,
    parse_escalation_template,
    parse_template_body,
    parse_template_subject,
)
from parsers.html_text import html_to_text
from parsers.mail import parse_mail
from parsers.model import Address, ParsedMail, UnparseableMail
from parsers.reply import extract_new_text

__all__ = [
    "FIELD_LABELS",
    "Address",
    "EscalationTemplate",
    "ParsedMail",
    "UnparseableMail",
    "extract_new_text",
    "html_to_text",
    "parse_escalation_template",
    "parse_mail",
    "parse_template_body",
    "parse_template_subject",
]
