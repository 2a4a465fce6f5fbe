from __future__ import annotations

import pytest

from parsers import (
    FIELD_LABELS,
    EscalationTemplate,
    parse_escalation_template,
    parse_template_body,
    parse_template_subject,
)

ALL_KEYS = list(FIELD_LABELS)

SUBJECTS = {
    "plain": ("ESCALATION - Login fails - Ticket #123", ("Login fails", "123")),
    "lower-case-extra-spaces": (
        "escalation  -   Login   fails  -  ticket #123",
        ("Login fails", "123"),
    ),
    "en-dash": ("ESCALATION \u2013 Login fails \u2013 Ticket #123", ("Login fails", "123")),
    "em-dash": ("ESCALATION\u2014Login fails\u2014Ticket #123", ("Login fails", "123")),
    "reply-prefix": ("RE: ESCALATION - Login fails - Ticket #123", ("Login fails", "123")),
    "forward-chain": ("Fw: RE: Fwd: ESCALATION - Login fails - Ticket #9", ("Login fails", "9")),
    "no-space-before-number": ("ESCALATION - Login fails - Ticket#123", ("Login fails", "123")),
    "space-after-hash": ("ESCALATION - Login fails - Ticket # 123", ("Login fails", "123")),
    "dash-in-brief": ("ESCALATION - SSO - EU only - Ticket #5", ("SSO - EU only", "5")),
    "ticket-word-in-brief": (
        "ESCALATION - Ticket system down - Ticket #7.",
        ("Ticket system down", "7"),
    ),
    "no-ticket": ("ESCALATION - Payment gateway down", ("Payment gateway down", None)),
}


@pytest.mark.parametrize(("subject", "expected"), SUBJECTS.values(), ids=SUBJECTS.keys())
def test_template_subjects(subject: str, expected: tuple[str, str | None]) -> None:
    assert parse_template_subject(subject) == expected


@pytest.mark.parametrize(
    "subject",
    ["Escalation process question", "ESCALATIONS - weekly report", "Re: Ticket #123", ""],
)
def test_non_template_subjects(subject: str) -> None:
    assert parse_template_subject(subject) is None
    assert parse_escalation_template(subject, "Priority: High") is None


PLAIN_BODY = """Hi team,

Priority: High
Customer: ACME Corp
Ticket #: 4521
Issue Summary: SSO login fails for every user
Steps Taken: Restarted the IdP connector
Customer Impact: 300 agents cannot work
Customer Expectation: Fix before 17:00 CET
Additional Context: Started after the 09:00 deploy

Thanks,
Bob
"""

EXPECTED_PLAIN = {
    "priority": "High",
    "customer": "ACME Corp",
    "ticket": "4521",
    "issue_summary": "SSO login fails for every user",
    "steps_taken": "Restarted the IdP connector",
    "customer_impact": "300 agents cannot work",
    "customer_expectation": "Fix before 17:00 CET",
    "additional_context": "Started after the 09:00 deploy",
}


def test_plain_body() -> None:
    assert parse_template_body(PLAIN_BODY) == EXPECTED_PLAIN


def test_bold_numbered_bulleted_and_reordered_body() -> None:
    body = """**Customer Impact:** 300 agents cannot work
1. **Priority:** High
2) *Customer*: ACME Corp
- Ticket Number: #4521
* __Issue Summary__: SSO login fails for every user
### Customer Expectation
Fix before 17:00 CET
**Additional Context**:
Started after the 09:00 deploy
STEPS TAKEN:   Restarted the IdP connector
"""
    assert parse_template_body(body) == EXPECTED_PLAIN


def test_multi_line_values_run_until_next_label() -> None:
    body = """Priority - P1
Issue Summary:
    Checkout returns HTTP 500
    for EU customers only.
Steps Taken:
1. Cleared CDN cache
2. Rolled back release 4.2

Customer Impact
No orders since 08:00.
Ticket #88
"""
    body += "-- \nAgent signature\n"
    fields = parse_template_body(body)

    assert fields["priority"] == "P1"
    assert fields["issue_summary"] == "Checkout returns HTTP 500\nfor EU customers only."
    assert fields["steps_taken"] == "1. Cleared CDN cache\n2. Rolled back release 4.2"
    assert fields["customer_impact"] == "No orders since 08:00."
    assert fields["ticket"] == "88"
    assert "signature" not in " ".join(fields.values())


def test_html_body() -> None:
    html = (
        "<html><body><p>Hello,</p>"
        "<p><b>Priority:</b> Urgent<br><strong>Customer:</strong> Globex</p>"
        "<table><tr><td>Ticket Number</td><td>#77</td></tr>"
        "<tr><td>Customer Impact</td><td>Payroll blocked</td></tr></table>"
        "<p><b>Issue Summary</b></p><p>Exports time out<br>after 30&nbsp;s</p>"
        "</body></html>"
    )
    fields = parse_template_body(html)

    assert fields == {
        "priority": "Urgent",
        "customer": "Globex",
        "ticket": "77",
        "customer_impact": "Payroll blocked",
        "issue_summary": "Exports time out\nafter 30 s",
    }


def test_first_value_wins_and_empty_labels_are_dropped() -> None:
    body = "Priority: High\nCustomer:\nPriority: Low\nAdditional Context:\n"
    assert parse_template_body(body) == {"priority": "High"}


def test_body_without_labels() -> None:
    assert parse_template_body("Please call me back about the outage.") == {}


def test_full_template_subject_ticket_wins() -> None:
    template = parse_escalation_template("RE: ESCALATION - SSO down - Ticket #123", PLAIN_BODY)

    assert isinstance(template, EscalationTemplate)
    assert template.brief == "SSO down"
    assert template.ticket == "123"
    assert template.fields["ticket"] == "4521"
    assert template.missing(ALL_KEYS) == []


def test_body_ticket_used_when_subject_has_none() -> None:
    template = parse_escalation_template("ESCALATION - SSO down", PLAIN_BODY)

    assert template is not None
    assert template.ticket == "4521"


def test_missing_fields_reported_in_requested_order() -> None:
    template = parse_escalation_template(
        "ESCALATION - SSO down", "Customer: ACME\nIssue Summary: broken\n"
    )

    assert template is not None
    assert template.ticket is None
    assert template.missing(["ticket", "priority", "customer", "steps_taken"]) == [
        "ticket",
        "priority",
        "steps_taken",
    ]
    assert template.missing(["severity", "customer"]) == ["severity"]


def test_fields_are_read_only() -> None:
    template = parse_escalation_template("ESCALATION - x - Ticket #1", "Priority: High")

    assert template is not None
    with pytest.raises(TypeError):
        template.fields["priority"] = "Low"  # type: ignore[index]


def test_field_labels_cover_canonical_keys() -> None:
    assert ALL_KEYS == [
        "priority",
        "customer",
        "ticket",
        "issue_summary",
        "steps_taken",
        "customer_impact",
        "customer_expectation",
        "additional_context",
    ]
    assert FIELD_LABELS["issue_summary"] == "Issue Summary"


def test_template_sent_as_reply_ignores_quoted_history() -> None:
    text = (
        "Priority: High\nCustomer: ACME\nAdditional Context: customer called twice\n\n"
        "From: Bob <bob@example.com>\nSent: Monday, January 8, 2024 10:15 AM\n"
        "To: Support\nSubject: printer\n\nCustomer Impact: quoted, must be ignored\n"
    )
    template = parse_escalation_template("RE: ESCALATION - Printer - Ticket #3", text)

    assert template is not None
    assert template.fields == {
        "priority": "High",
        "customer": "ACME",
        "additional_context": "customer called twice",
    }


def test_quoted_lines_do_not_leak_into_values() -> None:
    body = "Steps Taken:\nRebooted\n> old quoted line\nCleared cache\n"
    assert parse_template_body(body) == {"steps_taken": "Rebooted\nCleared cache"}
