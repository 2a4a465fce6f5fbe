"""The record of mail read for lead commands, which also makes commands replay-proof.

Every command mail gets one `LeadCommand` row on its case. An applied one also
claims its Message-ID on that case (`once_message_id`, unique per case), so the same
mail delivered again, by a second MX hop, a retried delivery or an attacker who kept
a copy, is recognised by its Message-ID whatever else changed in it, and is applied
at most once. Two workers applying copies at the same moment cannot both commit:
the unique constraint fails one, and the worker's redo then finds the other's row.

Refused mail does not claim its Message-ID: otherwise anyone who saw a lead's mail
on its way (a customer on Cc) could send a refused copy first and have the lead's
real mail taken for a replay.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client.core import CounterMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Case, LeadCommand

# Why a command mail was refused: the label values of the refused-commands metric.
REFUSAL_CODES = (
    "no_sender",
    "no_role",
    "replayed",
    "no_message_id",
    "no_token",
    "other_case_token",
    "other_person_token",
    "old_token",
    "retired_token",
    "not_authenticated",
    "not_aligned",
)


def applied_before(session: Session, case: Case, message_id: str) -> LeadCommand | None:
    """The earlier applied mail with this Message-ID on this case, if any."""
    return session.scalar(
        select(LeadCommand)
        .where(LeadCommand.case_id == case.id, LeadCommand.once_message_id == message_id)
        .limit(1)
    )


def record(
    session: Session,
    case: Case,
    *,
    sender: str,
    message_id: str,
    now: datetime,
    refusal: str | None,
    detail: str,
) -> None:
    """One row; an applied mail claims its Message-ID on the case."""
    session.add(
        LeadCommand(
            case_id=case.id,
            at=now,
            sender=sender,
            message_id=message_id or None,
            once_message_id=message_id if refusal is None and message_id else None,
            outcome="refused" if refusal is not None else "applied",
            refusal=refusal,
            detail=detail,
        )
    )
    # Flushed now, so a concurrent copy fails here and not at the end of the batch.
    session.flush()


def refused_metric(session: Session, prefix: str) -> CounterMetricFamily:
    """Refused command mails by reason, every reason listed (0 until one happens)."""
    counts = dict.fromkeys(REFUSAL_CODES, 0)
    for refusal, count in session.execute(
        select(LeadCommand.refusal, func.count())
        .where(LeadCommand.refusal.is_not(None))
        .group_by(LeadCommand.refusal)
    ):
        counts[str(refusal)] = int(count)
    metric = CounterMetricFamily(
        f"{prefix}_lead_commands_refused",
        "Mails read for lead commands and refused, by reason.",
        labels=["reason"],
    )
    for reason, count in counts.items():
        metric.add_metric([reason], count)
    return metric
