"""A small, hand-checkable history of cases for report tests (and the example chart).

Two weeks in November 2026 on the default config: levels 1-2 on the 09:00-17:00
Mon-Fri business calendar, levels 3-4 around the clock. The expected numbers are
worked out in tests/ops/test_reports.py next to each case.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from store.db import Store
from store.models import Case, CaseEvent, InboundItem


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


# key, level, account, ticket, owner, opened, acknowledged, resolved, state,
# events: (kind, at, detail, data)
CASES: list[dict[str, Any]] = [
    {  # A: Mon 10:00, answered in 30m, resolved 16:00.
        "key": "ESC-000001", "level": 2, "account": "Acme Corp", "ticket": None,
        "owner": "lee.lead@example.com", "opened": at(2, 10), "ack": at(2, 10, 30),
        "resolved": at(2, 16), "state": "closed", "events": [],
    },
    {  # B: Fri 16:30, answered Mon 10:00 (1h30m business, 65h30m wall), breached,
        # resolved Tue 12:00, reopened Wed 10:00 and resolved again Wed 15:00.
        "key": "ESC-000002", "level": 2, "account": "Acme Corp", "ticket": None,
        "owner": "lee.lead@example.com", "opened": at(6, 16, 30), "ack": at(9, 10),
        "resolved": at(11, 15), "state": "monitoring",
        "events": [
            ("first_response_breached", at(9, 9, 30), "no response", {}),
            ("state_changed", at(11, 10), "monitoring -> open", {"to": "open"}),
        ],
    },
    {  # C: level 3 at night, answered in 20m, resolved in 8h; status mails 1 on time, 1 late.
        "key": "ESC-000003", "level": 3, "account": "Globex", "ticket": "4711",
        "owner": "oncall@example.com", "opened": at(3, 22), "ack": at(3, 22, 20),
        "resolved": at(4, 6), "state": "closed",
        "events": [
            ("status_sent", at(4, 2), "next update by 2026-11-04T06:00:00+00:00", {}),
            ("status_sent", at(4, 6, 30), "next update by 2026-11-04T10:30:00+00:00", {}),
        ],
    },
    {  # D: same ticket as C (a repeat), answered after 1h30m (breached), still open.
        "key": "ESC-000004", "level": 3, "account": None, "ticket": "4711",
        "owner": "oncall@example.com", "opened": at(10, 8), "ack": at(10, 9, 30),
        "resolved": None, "state": "investigating",
        "events": [("first_response_breached", at(10, 9), "no response", {})],
    },
    {  # E: level 4 for Acme (a repeat), 10m to answer, 7h to resolve, 3 status mails on time.
        "key": "ESC-000005", "level": 4, "account": "Acme Corp", "ticket": None,
        "owner": "head-of-support@example.com", "opened": at(12, 13), "ack": at(12, 13, 10),
        "resolved": at(12, 20), "state": "closed",
        "events": [
            ("status_sent", at(12, 15), "next update by 2026-11-12T17:00:00+00:00", {}),
            ("status_sent", at(12, 17), "next update by 2026-11-12T19:00:00+00:00", {}),
            ("status_sent", at(12, 19), "next update by 2026-11-12T21:00:00+00:00", {}),
        ],
    },
    {  # F: level 1 for Globex (a repeat), never answered, breached.
        "key": "ESC-000006", "level": 1, "account": "Globex", "ticket": None,
        "owner": "senior@example.com", "opened": at(11, 9), "ack": None,
        "resolved": None, "state": "open",
        "events": [("first_response_breached", at(11, 13), "no response", {})],
    },
]  # fmt: skip

INBOUND_IN_PERIOD = 60


def seed(store: Store) -> None:
    with store.transaction() as session:
        for n in range(INBOUND_IN_PERIOD + 2):
            received = at(2, 8) + timedelta(hours=5 * n)
            session.add(
                InboundItem(
                    received_at=received,
                    source="smtp",
                    mail_from="someone@acme.example",
                    rcpt_tos=["support@example.com"],
                    raw=b"Subject: x\r\n\r\nx\r\n",
                    sha256=f"{n:064x}",
                    message_id=f"m{n}@acme.example",
                    # Two duplicates: stored, but not counted as mail received.
                    state="duplicate" if n in (3, 4) else "done",
                )
            )
        # Outside the period: neither its mail nor its case count, but it makes
        # nothing a repeat (Initech has no case in the period).
        session.add(
            Case(
                key="ESC-000000", state="closed", level=2, owner_name="", owner_email="x@e.com",
                account="Initech", customer_email="c@initech.example", subject="old",
                opened_at=at(1, 12) - timedelta(days=30), updated_at=at(1, 12),
            )
        )  # fmt: skip
        for spec in CASES:
            case = Case(
                key=spec["key"],
                state=spec["state"],
                level=spec["level"],
                owner_name="",
                owner_email=spec["owner"],
                account=spec["account"],
                ticket=spec["ticket"],
                customer_email="customer@example.net",
                subject=f"case {spec['key']}",
                opened_at=spec["opened"],
                updated_at=spec["opened"],
                first_responded_at=spec["ack"],
                resolved_at=spec["resolved"],
            )
            session.add(case)
            session.flush()
            events = [("opened", spec["opened"], "opened", {"decision": {"level": spec["level"]}})]
            if spec["ack"] is not None:
                events.append(("acknowledged", spec["ack"], "first response", {}))
            events.extend(spec["events"])
            for kind, when, detail, data in sorted(events, key=lambda e: e[1]):
                session.add(
                    CaseEvent(
                        case_id=case.id, at=when, kind=kind, actor="gateway", detail=detail,
                        data=data,
                    )
                )  # fmt: skip
