"""The processing worker: claim a stored item, parse, classify, act, in one transaction.

A failure rolls the whole unit back and then, in a separate transaction, quarantines
the item with its reason. Nothing is dropped: a quarantined item keeps its raw bytes
and can be replayed once the cause is fixed.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from gateway.act.actions import CaseActions
from gateway.classify.classifier import Classifier, Decision, Evaluation
from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.config.version import version_of_config
from gateway.outbound.outbox import Outbox
from gateway.outbound.render import Renderer
from gateway.outbound.tokens import ensure_token_secret
from gateway.work.dedup import KeyClaims
from parsers.mail import parse_mail
from parsers.model import ParsedMail, UnparseableMail
from store.appends import hold, table_of
from store.content_key import content_key
from store.db import Store
from store.models import InboundItem

log = logging.getLogger("gateway.worker")

_INBOUND = table_of(InboundItem).c
_PENDING_FOR_PREPARE = (
    select(_INBOUND.id, _INBOUND.raw, _INBOUND.mail_from)
    .where(_INBOUND.state == "pending")
    .order_by(_INBOUND.id)
    .limit(bindparam("limit"))
)
_FINISH = (
    update(table_of(InboundItem))
    .where(_INBOUND.id == bindparam("item_id"))
    .values(
        state=bindparam("state"),
        attempts=bindparam("attempts"),
        processed_at=bindparam("processed_at"),
        decision=bindparam("decision"),
        explanation=bindparam("explanation"),
        config_version=bindparam("config_version"),
        error=bindparam("error"),
        case_id=bindparam("case_id"),
    )
)


@dataclass(frozen=True)
class Prepared:
    """An item parsed and evaluated before its transaction (see Worker._prepare)."""

    mail: ParsedMail
    evaluation: Evaluation
    content_key: str


@dataclass(frozen=True)
class Outcome:
    item_id: int
    state: str  # done, duplicate or quarantined
    decision: str | None
    case_key: str | None
    detail: str


class Worker:
    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        clock: Clock,
        *,
        shadow: bool = False,
        config_version: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        # Created up front, in its own transaction: workers sharing a store would
        # otherwise race to create it inside their mail transactions.
        ensure_token_secret(store, config)
        self.config_version = config_version or version_of_config(config)
        self.classifier = Classifier(config, config_version=self.config_version)
        renderer = Renderer(config.template_dir)
        # `run --shadow` or `shadow = true` in the config: either one keeps mail in.
        self.shadow = shadow or config.shadow
        self.outbox = Outbox(config, renderer, shadow=self.shadow)
        self.actions = CaseActions(config, self.outbox, self.classifier.directory)

    def _claim(
        self, session: Session, limit: int, only: Collection[int] | None = None
    ) -> list[InboundItem]:
        """Take up to `limit` pending items (or those of `only` still pending)."""
        pending = select(InboundItem).where(InboundItem.state == "pending")
        if only is not None:
            pending = pending.where(InboundItem.id.in_(only))
        pending = pending.order_by(InboundItem.id).limit(limit)
        if not self.store.is_sqlite:
            # Several daemons may share one PostgreSQL store; each takes other items.
            return list(session.scalars(pending.with_for_update(skip_locked=True)))
        # SQLite has no row locks, and another worker (an `ingest` run, a worker
        # process) may have read the same items. The guarded write waits for the
        # database's write lock, and under it only the items still pending come back:
        # those are ours until commit. If another worker took them all meanwhile, the
        # second look already runs under our lock, so it sees the truth.
        for _ in range(2):
            candidates = list(session.scalars(pending))
            if not candidates:
                return []
            claimed = set(
                session.scalars(
                    update(InboundItem)
                    .where(
                        InboundItem.id.in_([item.id for item in candidates]),
                        InboundItem.state == "pending",
                    )
                    .values(state="pending")
                    .returning(InboundItem.id)
                    .execution_options(synchronize_session=False)
                )
            )
            for item in candidates:
                if item.id not in claimed:
                    session.expunge(item)
            if claimed:
                return [item for item in candidates if item.id in claimed]
        return []

    def process_next(self, item_id: int | None = None) -> Outcome | None:
        """Process one pending item (the oldest, or the given one). None if nothing waits."""
        claimed_id: int | None = None
        try:
            with self.store.transaction() as session:
                claimed = self._claim(session, 1, None if item_id is None else [item_id])
                if not claimed:
                    return None
                claimed_id = claimed[0].id
                return self._process_all(session, claimed, {})[0]
        except UnparseableMail as exc:
            if claimed_id is None:
                raise
            return self._quarantine(claimed_id, f"unparseable: {exc}")
        except Exception as exc:
            if claimed_id is None:
                raise  # the store itself failed; the item stays pending for a retry
            log.exception("item %s failed; quarantined", claimed_id)
            reason = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
            return self._quarantine(claimed_id, reason)

    def _prepare(self, limit: int) -> dict[int, Prepared | None]:
        """Parse and evaluate the oldest pending items, reading only.

        On SQLite a worker's transaction holds the single write lock from its claim to
        its commit, and the SMTP listener, the IMAP watcher and the outbox sender wait
        for it. Parsing and the rules need no store, so they are done before the
        claim, in a read that takes no lock. The batch then claims exactly these items
        (mail stored meanwhile waits for the next batch). One that fails here maps to
        None: the transaction redoes it and fails it the usual way.
        """
        with self.store.session() as session:
            rows = session.execute(_PENDING_FOR_PREPARE, {"limit": limit}).all()
        prepared: dict[int, Prepared | None] = {}
        for item_id, raw, mail_from in rows:
            try:
                mail = parse_mail(raw)
                evaluation = self.classifier.evaluate(mail, mail_from)
                prepared[item_id] = Prepared(mail, evaluation, content_key(raw))
            except Exception:
                prepared[item_id] = None
        return prepared

    def process_batch(self, limit: int = 20) -> list[Outcome]:
        """Process up to `limit` pending items in one transaction; [] if none wait.

        Under load this spends one claim, one flush and one commit on many mails. If
        any of them fails, the whole batch rolls back and each item is redone in its
        own transaction, so only the culprit is quarantined.
        """
        ids: list[int] = []
        # PostgreSQL locks rows, not the database: there the claim comes first, so
        # workers sharing the store never parse the same mail twice.
        prepared = self._prepare(limit) if self.store.is_sqlite else None
        if prepared is not None and not prepared:
            return []
        try:
            with self.store.transaction() as session:
                items = self._claim(session, limit, None if prepared is None else list(prepared))
                ids = [item.id for item in items]
                return self._process_all(session, items, prepared or {})
        except Exception:
            if not ids:
                raise  # the claim itself failed: the store is unavailable
            log.info("batch of %s items failed; redoing them one by one", len(ids))
            return [outcome for item_id in ids if (outcome := self.process_next(item_id))]

    def drain(self, limit: int | None = None) -> list[Outcome]:
        outcomes: list[Outcome] = []
        while limit is None or len(outcomes) < limit:
            outcome = self.process_next()
            if outcome is None:
                break
            outcomes.append(outcome)
        return outcomes

    def _process_all(
        self, session: Session, items: list[InboundItem], prepared: dict[int, Prepared | None]
    ) -> list[Outcome]:
        known = {item_id: p.content_key for item_id, p in prepared.items() if p is not None}
        claims = KeyClaims.take(session, items, self.clock.now(), known)
        return [self._process(session, item, prepared.get(item.id), claims) for item in items]

    def _finish(
        self, session: Session, item: InboundItem, claims: KeyClaims, **columns: Any
    ) -> None:
        """Record the item's outcome, written with the transaction's other held rows.

        The claimed ORM object is left as loaded: tracked changes would cost a
        unit-of-work UPDATE at flush. Nothing in the transaction reads the item's row
        again; later copies of its mail in the batch ask `claims` for its case.
        """
        hold(session, _FINISH, {"item_id": item.id, "attempts": item.attempts + 1, **columns})
        claims.note(item, columns["case_id"])

    def _process(
        self,
        session: Session,
        item: InboundItem,
        prepared: Prepared | None,
        claims: KeyClaims,
    ) -> Outcome:
        now = self.clock.now()
        holder = claims.holder(item)
        if holder is not None:
            self._finish(
                session,
                item,
                claims,
                state="duplicate",
                processed_at=now,
                decision="duplicate",
                explanation=item.explanation,
                config_version=item.config_version,
                error=item.error,
                case_id=holder.case_id,
            )
            detail = f"same content as item {holder.item_id}"
            log.info("item %s duplicate: %s", item.id, detail)
            return Outcome(item.id, "duplicate", None, None, detail)
        if prepared is None:
            mail = parse_mail(item.raw)
            evaluation = self.classifier.evaluate(mail, item.mail_from)
        else:
            mail, evaluation = prepared.mail, prepared.evaluation
        decision = self.classifier.classify(
            session, mail, item.mail_from, list(item.rcpt_tos or []), evaluation
        )
        case = self.actions.apply(session, decision, mail, item, now)
        self._finish(
            session,
            item,
            claims,
            state="done",
            processed_at=now,
            decision=decision.action,
            explanation=decision.as_dict(),
            config_version=self.config_version,
            error=None,
            case_id=case.id if case is not None else item.case_id,
        )
        self._log_decision(item, decision, case.key if case else None)
        return Outcome(
            item.id, "done", decision.action, case.key if case else None, decision.reason
        )

    def _log_decision(self, item: InboundItem, decision: Decision, case_key: str | None) -> None:
        log.info(
            "item=%s decision=%s level=%s case=%s reason=%s",
            item.id,
            decision.action,
            decision.level,
            case_key or "-",
            decision.reason,
        )

    def _quarantine(self, item_id: int, reason: str) -> Outcome:
        with self.store.transaction() as session:
            item = session.get(InboundItem, item_id, with_for_update=not self.store.is_sqlite)
            assert item is not None
            if item.state != "pending":
                # Our failed attempt released the item, and another worker sharing the
                # store has handled it since; its result stands.
                log.info("item=%s failed here but was %s elsewhere", item_id, item.state)
                return Outcome(item_id, item.state, item.decision, None, "handled elsewhere")
            item.state = "quarantined"
            item.attempts += 1
            item.error = reason
            item.processed_at = self.clock.now()
        log.warning("item=%s quarantined: %s", item_id, reason.splitlines()[0])
        return Outcome(item_id, "quarantined", None, None, reason.splitlines()[0])

    def replay(self, item_id: int) -> Outcome | None:
        with self.store.transaction() as session:
            item = session.get(InboundItem, item_id)
            if item is None or item.state != "quarantined":
                return None
            item.state = "pending"
        return self.process_next(item_id)
