"""Escalation reports: response and resolution times, SLA breaches, repeats, status mail.

Everything is computed from the store's cases and their audit events, for the cases
opened in the period. Definitions (so the numbers can be checked by hand):

- time to first response: opened -> the first "acknowledged" event (the first person
  to respond; a later level change restarts the owner's clock but not this measure).
- time to resolution: opened -> ``resolved_at`` (cleared by a reopen, so a reopened
  case counts from its last resolution; open cases are left out).
- business time uses the calendar of the case's current level, wall time is plain.
- p50/p90 are nearest-rank percentiles: the smallest value with at least that share of
  values at or below it. They are always one of the measured values.
- breached: a first-response or resolution breach was recorded on the case.
- per 1,000 inbound: cases / inbound mails received in the period (duplicates excluded).
- repeat: an earlier case (any time before) has the same account or the same ticket.
- status mail on time: sent no later than the time promised by the previous status
  mail ("next update by ..."), or for the first one the level's status interval after
  opening, plus one minute of grace for the timer tick.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gateway.cases.sla import status_due_from
from gateway.config import GatewayConfig
from store.models import Case, CaseEvent, InboundItem

GroupBy = Literal["level", "account", "owner"]
STATUS_GRACE = timedelta(minutes=1)
BREACH_KINDS = frozenset({"first_response_breached", "resolution_breached"})


@dataclass(frozen=True)
class CaseFacts:
    key: str
    level: int
    account: str | None
    owner: str
    opened_at: datetime
    first_response_wall: timedelta | None
    first_response_business: timedelta | None
    resolution_wall: timedelta | None
    resolution_business: timedelta | None
    breached: bool
    resolved: bool
    reopened: bool
    repeat: bool
    status_on_time: int
    status_late: int


@dataclass
class Row:
    group: str
    cases: list[CaseFacts] = field(default_factory=list)


def percentile(values: Sequence[timedelta], share: float) -> timedelta | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _status_counts(
    config: GatewayConfig, case: Case, events: Iterable[CaseEvent]
) -> tuple[int, int]:
    on_time = late = 0
    due: datetime | None = status_due_from(config, case, case.opened_at)
    for event in events:
        if event.kind != "status_sent":
            continue
        stated = (event.data or {}).get("due")
        if isinstance(stated, str):
            due = datetime.fromisoformat(stated)
        if due is not None and event.at > due + STATUS_GRACE:
            late += 1
        else:
            on_time += 1
        promise = (event.detail or "").rpartition("next update by ")[2].strip()
        try:
            due = datetime.fromisoformat(promise) if promise else None
        except ValueError:
            due = None
    return on_time, late


def case_facts(
    config: GatewayConfig, case: Case, events: Sequence[CaseEvent], repeat: bool
) -> CaseFacts:
    calendar = config.calendar_for(case.level)
    acknowledged = next((e.at for e in events if e.kind == "acknowledged"), None)
    first = acknowledged or case.first_responded_at
    resolved = case.resolved_at
    reopened = any(e.kind == "state_changed" and (e.data or {}).get("to") == "open" for e in events)
    breached = (
        any(e.kind in BREACH_KINDS for e in events)
        or case.first_response_breached_at is not None
        or case.resolution_breached_at is not None
    )
    on_time, late = _status_counts(config, case, events)
    return CaseFacts(
        key=case.key or str(case.id),
        level=case.level,
        account=case.account,
        owner=case.owner_email,
        opened_at=case.opened_at,
        first_response_wall=first - case.opened_at if first else None,
        first_response_business=calendar.elapsed(case.opened_at, first) if first else None,
        resolution_wall=resolved - case.opened_at if resolved else None,
        resolution_business=calendar.elapsed(case.opened_at, resolved) if resolved else None,
        breached=breached,
        resolved=resolved is not None or case.state in {"resolved", "monitoring", "closed"},
        reopened=reopened,
        repeat=repeat,
        status_on_time=on_time,
        status_late=late,
    )


def _is_repeat(session: Session, case: Case) -> bool:
    conditions = []
    if case.account:
        conditions.append(Case.account == case.account)
    if case.ticket:
        conditions.append(Case.ticket == case.ticket)
    if not conditions:
        return False
    earlier = session.scalar(
        select(func.count()).where(
            or_(*conditions),
            (Case.opened_at < case.opened_at)
            | ((Case.opened_at == case.opened_at) & (Case.id < case.id)),
        )
    )
    return bool(earlier)


def collect(
    session: Session,
    config: GatewayConfig,
    since: datetime,
    until: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[CaseFacts], int]:
    """Facts for every case opened in [since, until), and the inbound mail count."""
    cases = list(
        session.scalars(
            select(Case)
            .where(Case.opened_at >= since, Case.opened_at < until)
            .order_by(Case.opened_at, Case.id)
        )
    )
    facts: list[CaseFacts] = []
    for done, case in enumerate(cases, 1):
        events = list(
            session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
            )
        )
        facts.append(case_facts(config, case, events, _is_repeat(session, case)))
        if progress is not None:
            progress(done, len(cases))
    inbound = session.scalar(
        select(func.count()).where(
            InboundItem.received_at >= since,
            InboundItem.received_at < until,
            InboundItem.state != "duplicate",
        )
    )
    return facts, int(inbound or 0)


def group(facts: Sequence[CaseFacts], by: GroupBy) -> list[Row]:
    rows: dict[str, Row] = {}
    for fact in facts:
        if by == "level":
            name = f"level {fact.level}"
        elif by == "account":
            name = fact.account or "(no account)"
        else:
            name = fact.owner
        rows.setdefault(name, Row(name)).cases.append(fact)
    ordered = [rows[name] for name in sorted(rows)]
    return [*ordered, Row("all", list(facts))]


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def summarise(row: Row, inbound: int) -> dict[str, Any]:
    cases = row.cases
    frb = [c.first_response_business for c in cases if c.first_response_business is not None]
    frw = [c.first_response_wall for c in cases if c.first_response_wall is not None]
    rsb = [c.resolution_business for c in cases if c.resolution_business is not None]
    rsw = [c.resolution_wall for c in cases if c.resolution_wall is not None]
    resolved = [c for c in cases if c.resolved]
    breached = sum(c.breached for c in cases)
    return {
        "group": row.group,
        "cases": len(cases),
        "per_1000_inbound": round(1000 * len(cases) / inbound, 1) if inbound else None,
        "first_response_business_p50_s": _seconds(percentile(frb, 0.5)),
        "first_response_business_p90_s": _seconds(percentile(frb, 0.9)),
        "first_response_wall_p50_s": _seconds(percentile(frw, 0.5)),
        "first_response_wall_p90_s": _seconds(percentile(frw, 0.9)),
        "resolution_business_p50_s": _seconds(percentile(rsb, 0.5)),
        "resolution_business_p90_s": _seconds(percentile(rsb, 0.9)),
        "resolution_wall_p50_s": _seconds(percentile(rsw, 0.5)),
        "resolution_wall_p90_s": _seconds(percentile(rsw, 0.9)),
        "sla_breached": breached,
        "sla_breached_share": round(breached / len(cases), 3) if cases else None,
        "resolved": len(resolved),
        "resolved_without_reopen_share": (
            round(sum(not c.reopened for c in resolved) / len(resolved), 3) if resolved else None
        ),
        "repeat_escalations": sum(c.repeat for c in cases),
        "status_on_time": sum(c.status_on_time for c in cases),
        "status_late": sum(c.status_late for c in cases),
    }


def build_report(facts: Sequence[CaseFacts], inbound: int, by: GroupBy) -> dict[str, Any]:
    return {
        "inbound_mails": inbound,
        "group_by": by,
        "rows": [summarise(row, inbound) for row in group(facts, by)],
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("GROUP", lambda r: str(r["group"])),
    ("CASES", lambda r: str(r["cases"])),
    ("/1000", lambda r: "-" if r["per_1000_inbound"] is None else f"{r['per_1000_inbound']:g}"),
    (
        "1ST RESP BIZ p50/p90",
        lambda r: (
            f"{_duration(r['first_response_business_p50_s'])}/"
            f"{_duration(r['first_response_business_p90_s'])}"
        ),
    ),
    (
        "1ST RESP WALL p50/p90",
        lambda r: (
            f"{_duration(r['first_response_wall_p50_s'])}/"
            f"{_duration(r['first_response_wall_p90_s'])}"
        ),
    ),
    (
        "RESOLVE BIZ p50/p90",
        lambda r: (
            f"{_duration(r['resolution_business_p50_s'])}/"
            f"{_duration(r['resolution_business_p90_s'])}"
        ),
    ),
    (
        "RESOLVE WALL p50/p90",
        lambda r: (
            f"{_duration(r['resolution_wall_p50_s'])}/{_duration(r['resolution_wall_p90_s'])}"
        ),
    ),
    ("BREACHED", lambda r: f"{r['sla_breached']} ({_share(r['sla_breached_share'])})"),
    ("NO REOPEN", lambda r: _share(r["resolved_without_reopen_share"])),
    ("REPEAT", lambda r: str(r["repeat_escalations"])),
    ("STATUS ok/late", lambda r: f"{r['status_on_time']}/{r['status_late']}"),
]


def format_table(report: dict[str, Any]) -> str:
    cells = [[name for name, _ in COLUMNS]]
    cells += [[render(row) for _, render in COLUMNS] for row in report["rows"]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    lines.append(f"inbound mails in period: {report['inbound_mails']}")
    return "\n".join(lines)


def format_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    rows = report["rows"]
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["group"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
