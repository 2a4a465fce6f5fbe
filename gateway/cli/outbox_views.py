"""Read-only view of the outbox for `outbox list` (shadow mode's "what would have gone")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Case, OutboxMail

OUTBOX_STATES = ("pending", "sent", "dead", "shadow")


def list_outbox(session: Session, state: str | None = None) -> list[dict[str, Any]]:
    query = (
        select(OutboxMail, Case.key)
        .join(Case, Case.id == OutboxMail.case_id, isouter=True)
        .order_by(OutboxMail.id)
    )
    if state:
        query = query.where(OutboxMail.state == state)
    return [
        {
            "id": mail.id,
            "state": mail.state,
            "kind": mail.kind,
            "case": key,
            "to": list(mail.recipients),
            "subject": mail.subject,
            "created_at": mail.created_at.isoformat(),
            "sent_at": mail.sent_at.isoformat() if mail.sent_at else None,
            "attempts": mail.attempts,
            "last_error": mail.last_error,
            "dead_cause": mail.dead_cause,
        }
        for mail, key in session.execute(query)
    ]


def format_outbox(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "outbox is empty"
    lines = [f"{'ID':>6}  {'STATE':<8} {'KIND':<20} {'CASE':<12} {'CREATED':<25} TO / SUBJECT"]
    for row in rows:
        lines.append(
            f"{row['id']:>6}  {row['state']:<8} {row['kind']:<20} {row['case'] or '-':<12} "
            f"{row['created_at']:<25} {', '.join(row['to'])} / {row['subject']}"
        )
        if row["last_error"] and row["state"] != "sent":
            # Why a mail is dead or still waiting is what an admin runs this to find out.
            cause = f" ({row['dead_cause']})" if row["dead_cause"] else ""
            lines.append(
                f"{'':>8}last error{cause} after {row['attempts']} attempt(s): {row['last_error']}"
            )
    return "\n".join(lines)
