"""Read-only views of cases, quarantine and decisions, for the CLI (text and JSON)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Case, CaseEvent, InboundItem, MessageLink, OutboxMail


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def case_summary(case: Case) -> dict[str, Any]:
    return {
        "key": case.key,
        "state": case.state,
        "level": case.level,
        "owner": {"name": case.owner_name, "email": case.owner_email},
        "account": case.account,
        "customer": {"name": case.customer_name, "email": case.customer_email},
        "subject": case.subject,
        "ticket": case.ticket,
        "opened_at": _iso(case.opened_at),
        "updated_at": _iso(case.updated_at),
        "deadlines": {
            "first_response_due": _iso(case.first_response_due),
            "reminder_due": _iso(case.reminder_due),
            "next_status_due": _iso(case.next_status_due),
            "resolution_due": _iso(case.resolution_due),
            "monitoring_until": _iso(case.monitoring_until),
            "eta": _iso(case.eta),
        },
        "clock_paused_since": _iso(case.paused_at),
        "first_response_breached_at": _iso(case.first_response_breached_at),
        "resolution_breached_at": _iso(case.resolution_breached_at),
        "timer_error": case.timer_error,
        "first_responded_at": _iso(case.first_responded_at),
        "resolved_at": _iso(case.resolved_at),
        "closed_at": _iso(case.closed_at),
    }


def list_cases(session: Session, state: str | None = None) -> list[dict[str, Any]]:
    query = select(Case).order_by(Case.id)
    if state:
        query = query.where(Case.state == state)
    return [case_summary(case) for case in session.scalars(query)]


def show_case(session: Session, key: str) -> dict[str, Any] | None:
    case = session.scalar(select(Case).where(Case.key == key.upper()))
    if case is None:
        return None
    detail = case_summary(case)
    detail["fields"] = case.fields
    detail["summary"] = case.summary
    detail["events"] = [
        {
            "at": _iso(e.at),
            "kind": e.kind,
            "actor": e.actor,
            "detail": e.detail,
            "data": e.data,
            "inbound_item": e.inbound_item_id,
        }
        for e in session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        )
    ]
    detail["mail_in"] = [
        {
            "item": item.id,
            "received_at": _iso(item.received_at),
            "from": item.mail_from,
            "message_id": item.message_id,
            "decision": item.decision,
        }
        for item in session.scalars(
            select(InboundItem).where(InboundItem.case_id == case.id).order_by(InboundItem.id)
        )
    ]
    detail["mail_out"] = [
        {
            "id": mail.id,
            "kind": mail.kind,
            "to": mail.recipients,
            "subject": mail.subject,
            "message_id": mail.message_id,
            "state": mail.state,
            "created_at": _iso(mail.created_at),
            "sent_at": _iso(mail.sent_at),
            "attempts": mail.attempts,
        }
        for mail in session.scalars(
            select(OutboxMail).where(OutboxMail.case_id == case.id).order_by(OutboxMail.id)
        )
    ]
    detail["message_ids"] = [
        {"message_id": link.message_id, "direction": link.direction}
        for link in session.scalars(
            select(MessageLink).where(MessageLink.case_id == case.id).order_by(MessageLink.id)
        )
    ]
    return detail


def list_quarantine(session: Session) -> list[dict[str, Any]]:
    return [
        {
            "id": item.id,
            "received_at": _iso(item.received_at),
            "source": item.source,
            "message_id": item.message_id,
            "attempts": item.attempts,
            "error": (item.error or "").splitlines()[0] if item.error else "",
        }
        for item in session.scalars(
            select(InboundItem).where(InboundItem.state == "quarantined").order_by(InboundItem.id)
        )
    ]


def format_explanation(result: dict[str, Any], subject: str) -> str:
    lines = [f"Subject:   {subject}", f"Decision:  {result['decision']}  ({result['reason']})"]
    if result["level"] is not None:
        lines.append(f"Level:     {result['level']}")
    if result["case_key"]:
        lines.append(f"Case:      {result['case_key']} ({result['threaded_by']})")
    if result["account"]:
        lines.append(f"Account:   {result['account']}")
    blocked = result["auto_reply_blocked"]
    lines.append(f"Auto-reply: {'blocked: ' + blocked if blocked else 'allowed'}")
    lines.append("Rules:")
    for rule in result["rules"]:
        mark = "FIRED" if rule["fired"] else "  -  "
        level = f"L{rule['level']}" if rule["level"] else "  "
        lines.append(f"  [{mark}] {level} {rule['rule']:<28} {rule['evidence']}")
    return "\n".join(lines)


def _short(iso: str | None) -> str:
    """An ISO timestamp as "2026-11-23 17:01 UTC" for tables."""
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else "-"


def format_case_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no cases"
    header = (
        f"{'KEY':<12} {'STATE':<20} {'LVL':>3}  {'OWNER':<28} {'FIRST RESPONSE DUE':<20} SUBJECT"
    )
    lines = [header]
    for row in rows:
        due = _short(row["deadlines"]["first_response_due"])
        lines.append(
            f"{row['key']:<12} {row['state']:<20} {row['level']:>3}  "
            f"{row['owner']['email']:<28} {due:<20} {row['subject'][:50]}"
        )
    return "\n".join(lines)


def format_case(detail: dict[str, Any]) -> str:
    lines = [
        f"{detail['key']}  state={detail['state']}  level={detail['level']}",
        f"Owner:    {detail['owner']['name']} <{detail['owner']['email']}>",
        f"Customer: {detail['customer']['name']} <{detail['customer']['email']}>",
        f"Account:  {detail['account'] or '-'}",
        f"Subject:  {detail['subject']}",
    ]
    for name, value in detail["deadlines"].items():
        lines.append(f"{name.replace('_', ' ').capitalize():<20} {value or '-'}")
    if detail["fields"]:
        lines.append("Template fields:")
        lines.extend(f"  {k}: {v}" for k, v in detail["fields"].items())
    lines.append("Events:")
    lines.extend(
        f"  {e['at']}  {e['kind']:<18} {e['actor']:<24} {e['detail']}" for e in detail["events"]
    )
    lines.append("Mail in:")
    lines.extend(
        f"  #{m['item']} {m['received_at']} from {m['from'] or '?'} ({m['decision']})"
        for m in detail["mail_in"]
    )
    lines.append("Mail out:")
    lines.extend(
        f"  #{m['id']} {m['kind']:<20} to {', '.join(m['to'])} [{m['state']}]"
        for m in detail["mail_out"]
    )
    return "\n".join(lines)
