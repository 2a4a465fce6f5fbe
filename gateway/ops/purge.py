"""Data protection: erase or anonymise one customer's data, by address or by domain.

What belongs to the customer:
- cases whose customer address matches (their cases);
- inbound mail they sent (envelope sender, From, Sender or Reply-To), and all mail on
  their cases;
- outgoing mail to them alone, and all mail on their cases;
- the auto-reply log of matching addresses;
- a matching address copied on somebody else's case (removed from its copy list), and
  events on other cases whose actor is a matching address (the actor is replaced).

`erase` deletes their cases with everything that points at them (gateway/ops/erasure.py).
`anonymise` keeps their cases for the reports (level, times, breaches, state changes)
but blanks who and what: customer address and name, subject, summary, template
fields, raw mail in and out, stored decisions; each kept case gets an `anonymised`
event. Either way one row in `data_protection_log` records the run, with counts.

Mail that somebody else sent or received and that only copies the customer stays:
it is that other person's mail, and its raw bytes still name the customer in a
header until retention removes them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.ops.erasure import delete_rows
from store.appends import table_of
from store.models import (
    AutoReplyLog,
    Case,
    CaseEvent,
    DataProtectionLog,
    InboundItem,
    OutboxMail,
)

ANONYMISED = "[anonymised]"
_ADDRESS_HEADERS = ("from", "sender", "reply-to")
_SCAN_CHUNK = 200


@dataclass(frozen=True)
class Selector:
    """One customer address, or every address at one domain."""

    address: str = ""
    domain: str = ""

    def __post_init__(self) -> None:
        if bool(self.address) == bool(self.domain):
            raise ValueError("give exactly one of an address or a domain")

    @property
    def needle(self) -> bytes:
        return (self.address or "@" + self.domain).lower().encode()

    def matches(self, email: str | None) -> bool:
        if not email:
            return False
        email = email.strip().strip("<>").lower()
        if self.address:
            return email == self.address.lower()
        return email.rpartition("@")[2] == self.domain.lower()

    def pattern(self) -> re.Pattern[str]:
        """The customer's addresses inside free text."""
        if self.address:
            return re.compile(re.escape(self.address), re.IGNORECASE)
        return re.compile(r"[\w.+-]+@" + re.escape(self.domain) + r"\b", re.IGNORECASE)

    def scrub(self, value: Any) -> Any:
        """`value` (text, or JSON made of lists and dicts) with their addresses replaced."""
        if isinstance(value, str):
            return self.pattern().sub(ANONYMISED, value)
        if isinstance(value, list):
            return [self.scrub(entry) for entry in value]
        if isinstance(value, dict):
            return {key: self.scrub(entry) for key, entry in value.items()}
        return value

    def label(self) -> str:
        """For the log: a domain as it is, an address only as its sha256."""
        if self.domain:
            return f"domain:{self.domain.lower()}"
        return "address-sha256:" + hashlib.sha256(self.address.lower().encode()).hexdigest()


@dataclass
class PurgePlan:
    case_ids: list[int] = field(default_factory=list)
    # Other customers' cases on which a matching address is copied.
    copied_on: list[int] = field(default_factory=list)
    item_ids: list[int] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    auto_reply_ids: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "cases": len(self.case_ids),
            "copied_on_cases": len(self.copied_on),
            "inbound_items": len(self.item_ids),
            "outbox": len(self.outbox_ids),
            "auto_reply_log": len(self.auto_reply_ids),
        }


def _headers_match(raw: bytes, selector: Selector) -> bool:
    head_end = raw.find(b"\n\n")
    head = raw if head_end < 0 else raw[:head_end]
    if selector.needle not in head.lower():
        return False  # cheap: most mail never mentions the customer
    headers = BytesHeaderParser().parsebytes(head)
    values = [str(v) for name in _ADDRESS_HEADERS for v in headers.get_all(name, [])]
    return any(selector.matches(address) for _, address in getaddresses(values))


def _matching_items(session: Session, selector: Selector, case_ids: set[int]) -> list[int]:
    found: list[int] = []
    after = 0
    while True:
        rows = session.execute(
            select(InboundItem.id, InboundItem.mail_from, InboundItem.case_id, InboundItem.raw)
            .where(InboundItem.id > after)
            .order_by(InboundItem.id)
            .limit(_SCAN_CHUNK)
        ).all()
        if not rows:
            return found
        for item_id, mail_from, case_id, raw in rows:
            if case_id in case_ids or selector.matches(mail_from) or _headers_match(raw, selector):
                found.append(item_id)
        after = rows[-1][0]


def plan_purge(session: Session, selector: Selector) -> PurgePlan:
    """Find the customer's rows; changes nothing."""
    plan = PurgePlan()
    for case_id, email, cc in session.execute(
        select(Case.id, Case.customer_email, Case.customer_cc)
    ):
        if selector.matches(email):
            plan.case_ids.append(case_id)
        elif any(selector.matches(entry) for entry in cc or []):
            plan.copied_on.append(case_id)
    theirs = set(plan.case_ids)
    plan.item_ids = _matching_items(session, selector, theirs)
    for outbox_id, case_id, recipients in session.execute(
        select(OutboxMail.id, OutboxMail.case_id, OutboxMail.recipients)
    ):
        to_them_alone = bool(recipients) and all(selector.matches(r) for r in recipients)
        if case_id in theirs or to_them_alone:
            plan.outbox_ids.append(outbox_id)
    plan.auto_reply_ids = [
        row_id
        for row_id, address in session.execute(select(AutoReplyLog.id, AutoReplyLog.address))
        if selector.matches(address)
    ]
    return plan


def _uncopy_and_unname(session: Session, plan: PurgePlan, selector: Selector) -> int:
    """Remove the customer from other cases' copy lists and event actors."""
    for case in session.scalars(select(Case).where(Case.id.in_(plan.copied_on))):
        case.customer_cc = [entry for entry in case.customer_cc if not selector.matches(entry)]
    renamed = 0
    actors = session.execute(select(CaseEvent.id, CaseEvent.actor)).all()
    for event_id, actor in actors:
        if selector.matches(actor):
            session.execute(
                update(CaseEvent).where(CaseEvent.id == event_id).values(actor=ANONYMISED)
            )
            renamed += 1
    return renamed


def _log(
    session: Session, action: str, selector: Selector, actor: str, now: datetime, counts: Any
) -> None:
    session.add(
        DataProtectionLog(
            at=now, action=action, selector=selector.label(), actor=actor, counts=dict(counts)
        )
    )


def erase(
    session: Session, plan: PurgePlan, selector: Selector, actor: str, now: datetime
) -> dict[str, int]:
    """Delete the customer's cases, mail and log rows; rows deleted per table."""
    counts: dict[str, int] = {"events_renamed": _uncopy_and_unname(session, plan, selector)}
    for model, ids in (
        (InboundItem, plan.item_ids),
        (OutboxMail, plan.outbox_ids),
        (AutoReplyLog, plan.auto_reply_ids),
        (Case, plan.case_ids),
    ):
        for name, count in delete_rows(session, table_of(model), ids).items():
            counts[name] = counts.get(name, 0) + count
    counts["copied_on_cases"] = len(plan.copied_on)
    _log(session, "erase", selector, actor, now, counts)
    return counts


def _anonymise_cases(
    session: Session, plan: PurgePlan, selector: Selector, actor: str, now: datetime
) -> None:
    events = select(CaseEvent).where(CaseEvent.case_id.in_(plan.case_ids))
    for event in session.scalars(events):
        # Events keep their kind, time and data for reports; the customer's address goes.
        event.detail = selector.scrub(event.detail)
        event.data = selector.scrub(event.data)
    for case in session.scalars(select(Case).where(Case.id.in_(plan.case_ids))):
        case.customer_email = f"anonymised-{case.id}@invalid"
        case.customer_name = ""
        case.customer_cc = []
        case.subject = ANONYMISED
        case.summary = ""
        case.fields = {}
        case.updated_at = now
        session.add(
            CaseEvent(
                case_id=case.id,
                at=now,
                kind="anonymised",
                actor=actor,
                detail="customer data anonymised on request",
                data={},
            )
        )


def anonymise(
    session: Session, plan: PurgePlan, selector: Selector, actor: str, now: datetime
) -> dict[str, int]:
    """Keep the customer's cases for reports, without who they were or what they wrote."""
    renamed = _uncopy_and_unname(session, plan, selector)
    _anonymise_cases(session, plan, selector, actor, now)
    session.execute(
        update(InboundItem)
        .where(InboundItem.id.in_(plan.item_ids))
        .values(raw=b"", mail_from=None, rcpt_tos=[], explanation=None)
    )
    # Mail not yet sent is never sent now: it has no recipients or body left.
    session.execute(
        update(OutboxMail)
        .where(OutboxMail.id.in_(plan.outbox_ids), OutboxMail.state == "pending")
        .values(state="dead", last_error="anonymised before it was sent")
    )
    session.execute(
        update(OutboxMail)
        .where(OutboxMail.id.in_(plan.outbox_ids))
        .values(raw=b"", recipients=[], subject=ANONYMISED)
    )
    counts = {**plan.summary(), "events_renamed": renamed}
    delete_rows(session, table_of(AutoReplyLog), plan.auto_reply_ids)
    _log(session, "anonymise", selector, actor, now, counts)
    return counts
