"""All mail about a case, from its opening to its closing: context, recipients, threading.

Opening a case, the timeline, replies and lead commands all build their mail here.
Every mail goes through the stored outbox inside the caller's transaction, so a
timer that fires and the mail it causes commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cases.agents import AGENT_ROLE, agents_of
from gateway.cases.wording import LevelWording
from gateway.config import GatewayConfig, Person
from gateway.outbound import batch_memo as batch_memo
from gateway.outbound.outbox import Outbox, QueuedMail, Recipient, Threading
from gateway.timefmt import format_when
from store.models import Case, OutboxMail

# Kinds of mail the customer sees; the next one threads under the latest of these.
CUSTOMER_KINDS = (
    "acknowledgement",
    "upgrade_notice",
    "template_incomplete",
    "status_update",
    "escalation_notice",
    "resolution_notice",
    "reopen_notice",
    "closing",
)

# How a state reads to a customer.
STATE_TEXT = {
    "open": "waiting for your case owner to pick it up",
    "acknowledged": "picked up by your case owner",
    "investigating": "being investigated",
    "waiting_on_customer": "waiting for information from you",
    "resolved": "resolved",
    "monitoring": "resolved; we are monitoring to make sure the fix holds",
    "closed": "closed",
}


def _person_line(name: str, email: str) -> str:
    """ "Bob Buyer <bob@acme.example>", or whichever of the two there is."""
    if name and email:
        return f"{name} <{email}>"
    return name or email


def recipients(people: Iterable[Person | Recipient]) -> list[Recipient]:
    """Deduplicated by address, first name wins, order kept."""
    seen: dict[str, Recipient] = {}
    for person in people:
        email = person.email.lower()
        if email and email not in seen:
            seen[email] = Recipient(person.email, person.name)
    return list(seen.values())


class TimelineMail:
    def __init__(self, config: GatewayConfig, outbox: Outbox) -> None:
        self.config = config
        self.outbox = outbox
        self.wording = LevelWording(config)

    def when(self, moment: datetime | None) -> str:
        return format_when(moment, self.config.timezone) if moment is not None else ""

    def context(self, case: Case, now: datetime, **extra: Any) -> dict[str, Any]:
        level = self.config.level(case.level)
        context: dict[str, Any] = {
            "case": case,
            "now": self.when(now),
            "level_name": level.name,
            "greeting_name": case.customer_name or case.customer_email,
            # For our own people: who the customer is, and the agent who escalated for them.
            "customer_line": _person_line(case.customer_name, case.customer_email) or "unknown",
            "agent_line": ", ".join(_person_line(a.name, a.email) for a in agents_of(case)),
            "to_agent": False,
            "state_text": STATE_TEXT.get(case.state, case.state),
            # Targets read as they count: "1 business hour" on a business calendar.
            "first_response_text": self.wording.duration(level, level.first_response),
            "first_response_due": self.when(case.first_response_due),
            "next_status_due": self.when(case.next_status_due) if case.state != "closed" else "",
            "resolution_due": self.when(case.resolution_due),
            "status_interval_text": self.wording.duration(level, level.status_interval),
            "business_hours": self.wording.business_hours(level),
            "is_24x7": level.calendar == "24x7",
        }
        context.update(extra)
        return context

    def threading(self, session: Session, case: Case, kinds: Sequence[str] | None) -> Threading:
        """Answer the latest mail of the given kinds, referencing the customer's first mail."""
        memo = batch_memo.current(session)
        if memo is not None and kinds == memo.customer_kinds and case.id in memo.known_cases:
            last = memo.last_customer_mail.get(case.id)
        else:
            query = select(OutboxMail.message_id).where(OutboxMail.case_id == case.id)
            if kinds is not None:
                query = query.where(OutboxMail.kind.in_(kinds))
            last = session.scalar(query.order_by(OutboxMail.id.desc()).limit(1))
        chain = [m for m in (case.root_message_id, last) if m]
        references = tuple(dict.fromkeys(chain))
        return Threading(references[-1] if references else None, references)

    @staticmethod
    def customer_recipients(
        case: Case, *, agents: bool = True
    ) -> tuple[list[Recipient], list[Recipient]]:
        """The customer, and everyone on their side who is copied (never twice).

        When an agent named the customer without an address, the agent, their point
        of contact, is addressed instead. `agents=False` leaves the agent out (they
        get their own acknowledgement).
        """
        copied = [
            Recipient(str(c["email"]), str(c.get("name", "")))
            for c in case.customer_cc
            if agents or c.get("role") != AGENT_ROLE
        ]
        if case.customer_email:
            addressed = [Recipient(case.customer_email, case.customer_name)]
        else:
            agent_emails = {a.email for a in agents_of(case)}
            addressed = [r for r in copied if r.email in agent_emails][:1]
        if not addressed:
            return [], []
        everyone = recipients([*addressed, *copied])
        return everyone[:1], everyone[1:]

    def to_customer(
        self,
        session: Session,
        case: Case,
        kind: str,
        now: datetime,
        *,
        answering: Threading | None = None,
        answers_inbound: bool = False,
        agents: bool = True,
        **extra: Any,
    ) -> QueuedMail | None:
        """Mail to the customer side; `answering` threads it under a mail of theirs.

        Only a mail that answers an inbound mail (`answers_inbound`: the
        acknowledgement, an upgrade notice) counts against the per-address cap; the
        case's own mail (status, escalation, resolution, reopening, closing) is what
        the gateway promised, and the state machine already keeps it from looping.
        None when the cap held the mail back, or when the case has nobody to write to.
        """
        to, cc = self.customer_recipients(case, agents=agents)
        if not to:
            return None
        extra.setdefault("greeting_name", to[0].name or to[0].email)
        extra.setdefault("to_agent", to[0].email.lower() != case.customer_email.lower())
        mail = self.outbox.enqueue(
            session,
            case=case,
            kind=kind,
            template=kind,
            context=self.context(case, now, **extra),
            to=to,
            cc=cc,
            subject=f"Re: {case.subject}",
            threading=answering or self.threading(session, case, CUSTOMER_KINDS),
            now=now,
            external=True,
            capped=answers_inbound,
        )
        memo = batch_memo.current(session)
        if memo is not None and mail is not None:
            memo.last_customer_mail[case.id] = mail.message_id
        return mail

    def to_sender(
        self,
        session: Session,
        case: Case,
        kind: str,
        sender: Recipient,
        now: datetime,
        *,
        answering: Threading,
        **extra: Any,
    ) -> QueuedMail | None:
        """An answer to the one person who wrote a mail, e.g. what their template lacks.

        It answers an inbound mail, so it counts against the per-address cap.
        """
        extra.setdefault("greeting_name", sender.name or sender.email)
        return self.outbox.enqueue(
            session,
            case=case,
            kind=kind,
            template=kind,
            context=self.context(case, now, **extra),
            to=[sender],
            subject=f"Re: {case.subject}",
            threading=answering,
            now=now,
            external=True,
        )

    def to_staff(
        self,
        session: Session,
        case: Case,
        kind: str,
        people: Iterable[Person | Recipient],
        now: datetime,
        *,
        answering: Threading | None = None,
        **extra: Any,
    ) -> QueuedMail | None:
        """Mail to our own people; `answering` threads it under a mail of theirs.

        One mail per person: each carries a reply token bound to its recipient
        (gateway/outbound/tokens.py). Returns the first.
        """
        to = recipients(people)
        if not to:
            return None
        threading = answering or self.threading(session, case, None)
        context = self.context(case, now, **extra)
        queued = [
            self.outbox.enqueue(
                session,
                case=case,
                kind=kind,
                template=kind,
                context=context,
                to=[person],
                subject=case.subject,
                threading=self._own_threading(session, threading, person.email),
                now=now,
                external=False,
                auto_submitted="auto-generated",
            )
            for person in to
        ]
        return queued[0]

    def _own_threading(self, session: Session, threading: Threading, address: str) -> Threading:
        """Threading without the ids of mail to others: those carry their tokens."""
        tokens = self.outbox.tokens(session)
        references = tokens.only_own(threading.references, address)
        in_reply_to = threading.in_reply_to
        if in_reply_to is not None and not tokens.only_own([in_reply_to], address):
            in_reply_to = references[-1] if references else None
        return Threading(in_reply_to, references)
