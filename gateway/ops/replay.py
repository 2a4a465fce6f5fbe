"""Replay: re-decide stored inbound mail under another config and list what would change.

Nothing is written. Each mail keeps the threading it had when it was processed (the
case key in its stored decision, with that case's level and state as they were at
the time, rebuilt from the audit events), because threading does not depend on the
rules and today's case state would otherwise make every old mail look different.
Each mail is re-decided on its own: a mail that would now open a case does not make
later replies thread to that case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.classify.classifier import Classifier
from gateway.classify.threading import ThreadMatch
from parsers.mail import parse_mail
from parsers.model import UnparseableMail
from store.models import Case, CaseEvent, InboundItem

REPLY_DECISIONS = frozenset({"open", "upgrade"})


@dataclass(frozen=True)
class Outcome:
    decision: str
    level: int | None
    fired: tuple[str, ...]
    reply: bool  # would an automatic reply go to the sender
    config_version: str

    @classmethod
    def from_explanation(cls, data: dict[str, Any]) -> Outcome:
        decision = str(data.get("decision"))
        return cls(
            decision=decision,
            level=data.get("level"),
            fired=tuple(sorted(str(r["rule"]) for r in data.get("fired", []))),
            reply=decision in REPLY_DECISIONS and not data.get("auto_reply_blocked"),
            config_version=str(data.get("config_version") or ""),
        )


@dataclass(frozen=True)
class Change:
    item_id: int
    received_at: datetime
    sender: str
    subject: str
    before: Outcome
    after: Outcome

    @property
    def differences(self) -> list[str]:
        b, a = self.before, self.after
        out: list[str] = []
        if b.decision != a.decision:
            out.append(f"decision {b.decision} -> {a.decision}")
        if b.level != a.level:
            out.append(f"level {b.level or '-'} -> {a.level or '-'}")
        added = sorted(set(a.fired) - set(b.fired))
        removed = sorted(set(b.fired) - set(a.fired))
        if added or removed:
            out.append(
                "rules " + " ".join([*(f"+{r}" for r in added), *(f"-{r}" for r in removed)])
            )
        if b.reply != a.reply:
            out.append("reply would go out" if a.reply else "reply would NOT go out")
        return out

    def as_dict(self) -> dict[str, Any]:
        def outcome(o: Outcome) -> dict[str, Any]:
            return {
                "decision": o.decision,
                "level": o.level,
                "rules_fired": list(o.fired),
                "reply": o.reply,
                "config_version": o.config_version,
            }

        return {
            "item": self.item_id,
            "received_at": self.received_at.isoformat(),
            "from": self.sender,
            "subject": self.subject,
            "before": outcome(self.before),
            "after": outcome(self.after),
            "changes": self.differences,
        }


@dataclass
class ReplayResult:
    replayed: int
    changes: list[Change]
    unreadable: list[int]


def _case_as_it_was(session: Session, case: Case, item: InboundItem) -> Case:
    """A detached copy of the case with the level and state it had before this item."""
    events = list(
        session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        )
    )
    own = [e.id for e in events if e.inbound_item_id == item.id]
    if own:
        before = [e for e in events if e.id < own[0]]
    else:
        cutoff = item.processed_at or item.received_at
        before = [e for e in events if e.at <= cutoff]
    level, state = case.level, case.state
    if before:
        level, state = 0, "open"
        for event in before:
            data = event.data or {}
            if event.kind == "opened":
                level = int((data.get("decision") or {}).get("level") or case.level)
            elif event.kind in {"upgraded", "level_changed"} and "to_level" in data:
                level = int(data["to_level"])
            elif event.kind == "state_changed" and "to" in data:
                state = str(data["to"])
        level = level or case.level
    return Case(id=case.id, key=case.key, level=level, state=state)


def _thread_then(session: Session, item: InboundItem, stored: dict[str, Any]) -> ThreadMatch | None:
    key = stored.get("case_key")
    if not key:
        return None
    case = session.scalar(select(Case).where(Case.key == key))
    if case is None:
        return None
    return ThreadMatch(_case_as_it_was(session, case, item), str(stored.get("threaded_by") or ""))


def _items(session: Session, since: datetime, until: datetime | None) -> list[int]:
    query = select(InboundItem.id).where(
        InboundItem.state == "done",
        InboundItem.received_at >= since,
        InboundItem.explanation.is_not(None),
    )
    if until is not None:
        query = query.where(InboundItem.received_at < until)
    return list(session.scalars(query.order_by(InboundItem.id)))


def replay(
    session: Session,
    classifier: Classifier,
    since: datetime,
    until: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    ids = _items(session, since, until)
    result = ReplayResult(len(ids), [], [])
    for done, item_id in enumerate(ids, 1):
        item = session.get(InboundItem, item_id)
        assert item is not None and item.explanation is not None
        change = _replay_one(session, classifier, item, item.explanation)
        if isinstance(change, str):
            result.unreadable.append(item_id)
        elif change is not None:
            result.changes.append(change)
        # Raw bytes are the bulk of each row; let them go as soon as the item is done.
        session.expunge(item)
        if progress is not None:
            progress(done, len(ids))
    return result


def _replay_one(
    session: Session, classifier: Classifier, item: InboundItem, stored: dict[str, Any]
) -> Change | str | None:
    try:
        mail = parse_mail(item.raw)
    except UnparseableMail:
        return "unreadable"
    decision = classifier.classify_in_thread(
        mail, item.mail_from, _thread_then(session, item, stored)
    )
    before = Outcome.from_explanation(stored)
    after = Outcome.from_explanation(decision.as_dict())
    change = Change(
        item.id,
        item.received_at,
        mail.from_.email if mail.from_ else (item.mail_from or ""),
        mail.subject,
        before,
        after,
    )
    return change if change.differences else None


def format_changes(result: ReplayResult) -> Iterator[str]:
    for change in result.changes:
        yield (
            f"#{change.item_id}  {change.received_at:%Y-%m-%d %H:%M}  {change.sender}  "
            f"{change.subject!r}"
        )
        for difference in change.differences:
            yield f"    {difference}"
    if result.unreadable:
        yield f"could not parse items: {', '.join(map(str, result.unreadable))}"
    yield f"{result.replayed} mail(s) re-decided, {len(result.changes)} would change"
