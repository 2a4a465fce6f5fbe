"""Writing outgoing mail into the stored outbox, inside the caller's transaction.

A mail is rendered to its final bytes here, so a crash can never leave a case change
without its mail: both are in one commit. The sender only ships stored bytes.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from typing import Any

from sqlalchemy import Integer, bindparam, func, select
from sqlalchemy.orm import Session

from gateway.config import GatewayConfig
from gateway.outbound import batch_memo as batch_memo
from gateway.outbound.compose import Recipient, Threading, compose, echoed_subject
from gateway.outbound.marks import OWN_MARKER_HEADER, strip_reply_prefixes
from gateway.outbound.render import Renderer
from gateway.outbound.tokens import ReplyTokens, tokens_from_store
from store.appends import add_auto_reply, add_event, add_link, add_outbox_mail, held_auto_replies
from store.models import AutoReplyLog, Case

_LOG = AutoReplyLog.__table__.c
# Built once: a statement keeps its compiled-cache key, so a call only binds values.
# Built per call, the query and its cache key took about 0.15 of the 0.2 ms spent here
# for every external mail (SQLite, measured).
_RECENT_AUTO_REPLIES = select(func.count()).select_from(
    select(_LOG.id)
    .where(_LOG.address == bindparam("address"), _LOG.at > bindparam("since"))
    .limit(bindparam("cap", type_=Integer))
    .subquery()
)


@dataclass(frozen=True)
class QueuedMail:
    """What a caller may need of a mail it just queued."""

    id: int
    kind: str
    message_id: str


class Outbox:
    def __init__(self, config: GatewayConfig, renderer: Renderer, shadow: bool = False) -> None:
        self.config = config
        self.renderer = renderer
        self.shadow = shadow
        self._tokens: ReplyTokens | None = None

    def tokens(self, session: Session) -> ReplyTokens:
        """Reply tokens under the configured secret, or the one kept in the store."""
        if self._tokens is None:
            self._tokens = tokens_from_store(session, self.config)
        return self._tokens

    def cap_reached(self, session: Session, address: str, now: datetime) -> bool:
        cap = self.config.auto_reply.max_per_address_per_hour
        if cap == 0:
            return True
        memo = batch_memo.current(session)
        if memo is not None and address in memo.known_addresses and memo.hour_start:
            # Counted for the whole timer batch at its start, plus what it has sent.
            return memo.replies_this_hour[address] >= cap
        since = now - timedelta(hours=1)
        # Reading at most `cap` rows keeps this constant-time however busy the address
        # is. The log rows this transaction still holds (store/appends.py) are counted
        # too; a Core query writes nothing and flushes nothing first.
        sent = session.connection().scalar(
            _RECENT_AUTO_REPLIES, {"address": address, "since": since, "cap": cap}
        )
        return int(sent or 0) + held_auto_replies(session, address, since) >= cap

    def enqueue(
        self,
        session: Session,
        *,
        case: Case,
        kind: str,
        template: str,
        context: dict[str, Any],
        to: Sequence[Recipient],
        cc: Sequence[Recipient] = (),
        subject: str,
        threading: Threading,
        now: datetime,
        external: bool,
        auto_submitted: str = "auto-replied",
        capped: bool = True,
    ) -> QueuedMail | None:
        """Render and store one mail.

        External mail counts against the per-address cap, a loop brake, unless
        `capped` is False: the mail a case promised (status, escalation, resolution,
        closing) must go out however many replies the address got. Returns None (and
        records why on the case) when the cap holds the mail back.
        """
        capped = external and capped
        if capped and self._held_back_by_cap(session, case, kind, to, now):
            return None
        message_id, identity_headers = self._identity(session, case, external, (*to, *cc))
        # The inbound subject is echoed cut short: a hostile 100 kB one stays theirs.
        tagged_subject = f"[{case.key}] {echoed_subject(strip_reply_prefixes(subject))}"
        body = self.renderer.render(template, context)
        outbound = self.config.outbound
        message = compose(
            sender=(outbound.from_name, outbound.from_address),
            to=to,
            cc=cc,
            subject=tagged_subject,
            date=now,
            message_id=message_id,
            threading=threading,
            extra_headers=_marks(case, auto_submitted, identity_headers),
            text=body.text,
            html=body.html,
        )
        queued = self._store(
            session,
            case=case,
            kind=kind,
            recipients=sorted({r.email for r in (*to, *cc)}),
            subject=tagged_subject,
            message_id=message_id,
            raw=message,
            now=now,
        )
        if capped:
            self._count_auto_replies(session, to, now)
        return queued

    def _held_back_by_cap(
        self,
        session: Session,
        case: Case,
        kind: str,
        to: Sequence[Recipient],
        now: datetime,
    ) -> bool:
        """True (recorded on the case) when a recipient has had its automatic mails."""
        capped = [r.email for r in to if self.cap_reached(session, r.email, now)]
        if not capped:
            return False
        add_event(
            session,
            case_id=case.id,
            at=now,
            kind="reply_suppressed",
            detail=(
                f"{kind} to {', '.join(capped)} not sent: cap of "
                f"{self.config.auto_reply.max_per_address_per_hour} "
                "automatic mails per address per hour reached"
            ),
            data={"kind": kind, "reason": "per-address cap"},
        )
        return True

    def _identity(
        self, session: Session, case: Case, external: bool, recipients: Sequence[Recipient]
    ) -> tuple[str, dict[str, str]]:
        """The mail's Message-ID and the headers that tie replies to it."""
        outbound = self.config.outbound
        people = {r.email.strip().lower() for r in recipients}
        # A reply token is personal (gateway/outbound/tokens.py): staff mail to several
        # people goes out once per person (TimelineMail.to_staff); one that did not
        # gets no token rather than a shared one.
        if external or not case.key or len(people) != 1:
            return make_msgid(domain=outbound.effective_message_id_domain), {}
        # Staff mail carries its recipient's reply token in its Message-ID and Reply-To,
        # so a lead's reply proves it answers mail we sent them.
        tokens = self.tokens(session)
        token = tokens.token(case.key, next(iter(people)))
        tagged = tokens.tagged(case.key, token)
        # Kept short: clients copy it into In-Reply-To, and long ids get folded.
        message_id = f"<{tagged}.{secrets.token_hex(6)}@{outbound.effective_message_id_domain}>"
        reply_to = tokens.reply_address(case.key, token, outbound.from_address)
        return message_id, {"Reply-To": reply_to}

    def _store(
        self,
        session: Session,
        *,
        case: Case,
        kind: str,
        recipients: list[str],
        subject: str,
        message_id: str,
        raw: bytes,
        now: datetime,
    ) -> QueuedMail:
        """The outbox row and the link that lets a reply to it find the case."""
        stored_id = message_id.strip("<>")
        mail_id = add_outbox_mail(
            session,
            case_id=case.id,
            kind=kind,
            created_at=now,
            envelope_from=self.config.outbound.from_address,
            recipients=recipients,
            subject=subject,
            message_id=stored_id,
            raw=raw,
            state="shadow" if self.shadow else "pending",
            attempts=0,
            next_attempt_at=now,
        )
        add_link(
            session,
            message_id=stored_id,
            case_id=case.id,
            direction="out",
            outbox_id=mail_id,
            at=now,
        )
        return QueuedMail(mail_id, kind, stored_id)

    def _count_auto_replies(self, session: Session, to: Sequence[Recipient], now: datetime) -> None:
        memo = batch_memo.current(session)
        for r in to:
            add_auto_reply(session, address=r.email, at=now)
            if memo is not None and r.email in memo.known_addresses:
                memo.replies_this_hour[r.email] += 1


def _marks(case: Case, auto_submitted: str, identity_headers: dict[str, str]) -> dict[str, str]:
    """The headers that tell responders our mail is automatic, and us that it is ours."""
    return {
        # RFC 3834: mark our mail as automatic so well-behaved responders stay quiet.
        "Auto-Submitted": auto_submitted,
        "X-Auto-Response-Suppress": "All",
        OWN_MARKER_HEADER: case.key or "",
        **identity_headers,
    }


__all__ = ["Outbox", "QueuedMail", "Recipient", "Threading"]
