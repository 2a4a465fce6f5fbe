"""The gateway's tables, as SQLAlchemy 2 typed models.

Every table that records history (inbound items, case events, outbox) is append-mostly:
rows change state but are never deleted, so the audit trail can always answer "why".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite would otherwise hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use the injected clock")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class InboundItem(Base):
    """One received message, stored raw before it is acknowledged to the sender."""

    __tablename__ = "inbound_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(120))
    mail_from: Mapped[str | None] = mapped_column(String(500))
    rcpt_tos: Mapped[list[Any]] = mapped_column(JSON, default=list)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(500))
    # pending -> done | duplicate | quarantined; quarantined -> pending on replay.
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    decision: Mapped[str | None] = mapped_column(String(20))
    # The full Decision (every rule with its evidence), so "why" survives for mail
    # that opened no case.
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Short sha256 of the config that decided (gateway/config/version.py): after a hot
    # reload, stored decisions still say which rules made them.
    config_version: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))

    __table_args__ = (
        Index("ix_inbound_state_id", "state", "id"),
        Index("ix_inbound_sha256", "sha256"),
        Index("ix_inbound_message_id", "message_id"),
    )


class InboundDedup(Base):
    """One row per mail acted on: its content key, held by the item that acted.

    The worker inserts the key in the transaction that handles the item; the primary
    key lets only one transaction in any number of workers and daemons hold it, and
    every other copy of the mail becomes a duplicate of the holder
    (store/content_key.py defines the key, gateway/work/dedup.py claims it).
    """

    __tablename__ = "inbound_dedup"

    content_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    inbound_item_id: Mapped[int] = mapped_column(ForeignKey("inbound_items.id"))
    claimed_at: Mapped[datetime]


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(40), unique=True)
    state: Mapped[str] = mapped_column(String(30))
    level: Mapped[int] = mapped_column(Integer)
    owner_name: Mapped[str] = mapped_column(String(200))
    owner_email: Mapped[str] = mapped_column(String(320))
    account: Mapped[str | None] = mapped_column(String(200))
    customer_name: Mapped[str] = mapped_column(String(200), default="")
    customer_email: Mapped[str] = mapped_column(String(320))
    # Everyone on the customer side who should hear about the case (e.g. the AM copied).
    customer_cc: Mapped[list[Any]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    ticket: Mapped[str | None] = mapped_column(String(100))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    first_response_due: Mapped[datetime | None]
    first_responded_at: Mapped[datetime | None]
    next_status_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    # When the lead expects a fix, as told to the customer in status mail.
    eta: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    root_message_id: Mapped[str | None] = mapped_column(String(500))
    # -- the timeline (gateway/cases/lifecycle.py, gateway/timeline/timers.py) --------------------
    reminder_due: Mapped[datetime | None]
    first_response_breached_at: Mapped[datetime | None]
    # Level 4 has nobody left to escalate to, so its managers are told again and again.
    breach_repeat_due: Mapped[datetime | None]
    resolution_breached_at: Mapped[datetime | None]
    # Set while waiting on the customer: the resolution clock stands still meanwhile.
    paused_at: Mapped[datetime | None]
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    monitoring_until: Mapped[datetime | None]
    last_status_at: Mapped[datetime | None]
    last_human_update_at: Mapped[datetime | None]
    # The earliest of the timers above that still matters; the tick scans only this.
    next_timer_at: Mapped[datetime | None]
    timer_failures: Mapped[int] = mapped_column(Integer, default=0)
    timer_error: Mapped[str | None] = mapped_column(Text)

    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", lazy="raise_on_sql"
    )

    __table_args__ = (
        Index("ix_cases_ticket_state", "ticket", "state"),
        Index("ix_cases_state", "state"),
        Index("ix_cases_first_response_due", "first_response_due"),
        Index("ix_cases_next_status_due", "next_status_due"),
        Index("ix_cases_next_timer_at", "next_timer_at"),
    )


class CaseEvent(Base):
    """Append-only audit log: every decision and change, with who and why."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(320))
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inbound_item_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_items.id"))

    case: Mapped[Case] = relationship(back_populates="events")


class MessageLink(Base):
    """Every Message-ID seen or sent on a case, so replies thread to it."""

    __tablename__ = "message_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(500))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # "in" or "out"
    inbound_item_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_items.id"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    at: Mapped[datetime]

    __table_args__ = (Index("ix_message_links_message_id", "message_id"),)


class OutboxMail(Base):
    """A fully rendered outgoing mail; the sender only ever ships these bytes."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[Any]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(500))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # pending -> sent | dead; "shadow" is recorded but never sent.
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    # While claimed: the sending process ("host=.. ns=.. pid=.. start=..", see
    # gateway/outbound/lease.py), so a dead holder's lease can be taken back at once.
    lease_holder: Mapped[str | None] = mapped_column(String(300))
    # Why a dead mail is dead: "refused" (a permanent 5xx) or "attempts" (ran out).
    dead_cause: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (Index("ix_outbox_state_next", "state", "next_attempt_at"),)


class AutoReplyLog(Base):
    """One row per automatic mail to an external address, for the per-address cap."""

    __tablename__ = "auto_reply_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime]
    # "reply" for the general cap; "refusal" for the one-per-hour refusal of commands.
    kind: Mapped[str] = mapped_column(String(20), default="reply")

    __table_args__ = (Index("ix_auto_reply_log_address_at", "address", "at"),)


class OwnerRotation(Base):
    """Round-robin position per level, kept in the store so restarts stay fair."""

    __tablename__ = "owner_rotation"

    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_index: Mapped[int] = mapped_column(Integer, default=0)


class ImapFolderState(Base):
    __tablename__ = "imap_folder_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(Integer)
    last_uid: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("mailbox", "folder", name="uq_imap_folder"),)


class Setting(Base):
    """Small values the gateway generates once and must keep, such as the token secret."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class LeadCommand(Base):
    """One row per mail read for lead commands on a case: applied or refused, and why.

    `once_message_id` is the command mail's Message-ID on the first attempt only (NULL
    on a replay), and unique per case: a mail re-delivered with the same Message-ID,
    whatever else changed in it, is applied at most once, even by two workers at the
    same time (gateway/leads/command_log.py).
    """

    __tablename__ = "lead_commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    sender: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str | None] = mapped_column(String(500))
    once_message_id: Mapped[str | None] = mapped_column(String(500))
    # "applied" (authorized; its commands ran, each maybe rejected) or "refused".
    outcome: Mapped[str] = mapped_column(String(20))
    # For a refusal, one of a small fixed set (gateway/leads/auth.py: REFUSAL_CODES).
    refusal: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("case_id", "once_message_id", name="uq_lead_commands_once"),
        Index("ix_lead_commands_refusal", "refusal"),
    )


class RetiredReplyToken(Base):
    """A reply token that no longer works, e.g. because its mail was copied to a customer."""

    __tablename__ = "retired_reply_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # The holder the token was issued to, and the token's nonce (its first 8 digits).
    address: Mapped[str] = mapped_column(String(320))
    nonce: Mapped[str] = mapped_column(String(16))
    retired_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("case_id", "address", "nonce", name="uq_retired_reply_tokens"),
    )


class DataProtectionLog(Base):
    """What `purge` and the retention job erased or anonymised, when, and by whom.

    Erased cases take their own events with them, so this is the audit trail that
    outlives the data. An erased address is kept only as its sha256 (a domain in clear):
    enough to show that a request was carried out, without keeping what it erased.
    """

    __tablename__ = "data_protection_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    # "erase", "anonymise" or "retention".
    action: Mapped[str] = mapped_column(String(20))
    selector: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(320))
    # Rows touched per kind: cases, inbound_items, outbox, events, auto_reply_log ...
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
