"""Leads steer a case by replying to its mail: authorize, apply commands, confirm.

Runs inside the worker's transaction. Every outcome lands in the case's audit trail:
a refused attempt with its reason, each applied command as the lifecycle event it
caused, and each invalid command with why. The lead always hears back (once per hour
at most for refusals), so a typo on a phone never fails silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cases.accounts import AccountDirectory
from gateway.cases.lifecycle import Lifecycle, LifecycleError
from gateway.cases.sla import ACTIVE_STATES, refresh_wakeup
from gateway.config import GatewayConfig, Person
from gateway.leads.auth import LeadAuthorizer
from gateway.leads.commands import HELP_TEXT, Command, parse_commands
from gateway.outbound.outbox import Outbox, Recipient, Threading
from gateway.outbound.tokens import ReplyTokens
from gateway.timefmt import format_when
from gateway.timeline.status_updates import StatusUpdates
from parsers.model import ParsedMail
from store.appends import add_auto_reply
from store.models import AutoReplyLog, Case


@dataclass
class CommandReport:
    applied: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    help_requested: bool = False
    send_now: bool = False


class LeadReplies:
    def __init__(
        self,
        config: GatewayConfig,
        outbox: Outbox,
        directory: AccountDirectory,
        lifecycle: Lifecycle,
        status_updates: StatusUpdates,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.directory = directory
        self.lifecycle = lifecycle
        self.status_updates = status_updates

    # -- entry point ---------------------------------------------------------------

    def handle(
        self,
        session: Session,
        case: Case,
        mail: ParsedMail,
        new_text: str,
        rcpt_tos: list[str],
        tokens: ReplyTokens,
        now: datetime,
    ) -> str:
        """Apply a command reply; returns a one-line summary for the log."""
        sender = mail.from_.email if mail.from_ else ""
        auth = LeadAuthorizer(self.config, tokens).authorize(case, mail, rcpt_tos)
        if not auth.allowed:
            self.lifecycle.event(
                session,
                case,
                now,
                "command_refused",
                auth.reason,
                actor=sender or "unknown sender",
                data={"sender": sender, "reason": auth.reason, "subject": mail.subject},
            )
            self._refuse(session, case, mail, sender, auth.reason, now)
            return f"refused: {auth.reason}"

        addressed = {a.email.lower() for a in mail.all_recipients}
        if case.customer_email.lower() in addressed:
            self.lifecycle.record_human_update(session, case, actor=sender, now=now)
        parsed = parse_commands(new_text)
        report = CommandReport(rejected=[(e.line, e.reason) for e in parsed.errors])
        send_now = bool(parsed.named("send"))
        for command in parsed.commands:
            try:
                self._apply(session, case, command, sender, send_now, report, now)
            except LifecycleError as exc:
                report.rejected.append((command.line, str(exc)))
        if report.send_now and case.state != "closed":
            self.status_updates.send_now(session, case, now)
        if parsed.free_text and case.state != "closed":
            self.lifecycle.add_internal_note(session, case, parsed.free_text, actor=sender, now=now)
            if parsed.empty:
                report.applied.append("no commands found: your reply was kept as an internal note")
            else:
                report.applied.append("the text after the commands was kept as an internal note")
        # Asking for help or reopening is not contact with the customer.
        if not {c.name for c in parsed.commands} & {"help", "reopen"}:
            self._owner_first_reply(session, case, sender, now)
        self.lifecycle.event(
            session,
            case,
            now,
            "command_reply",
            f"{len(report.applied)} applied, {len(report.rejected)} rejected ({auth.reason})",
            actor=sender,
            data={"applied": report.applied, "rejected": report.rejected, "auth": auth.reason},
        )
        self._confirm(session, case, mail, sender, report, now)
        return f"{len(report.applied)} applied, {len(report.rejected)} rejected"

    # -- commands ------------------------------------------------------------------

    def _apply(
        self,
        session: Session,
        case: Case,
        command: Command,
        actor: str,
        send_now: bool,
        report: CommandReport,
        now: datetime,
    ) -> None:
        life = self.lifecycle
        name = command.name
        if name == "status":
            assert command.status is not None
            life.transition(session, case, command.status, actor=actor, reason="lead", now=now)
            report.applied.append(f"status is now {case.state.replace('_', ' ')}")
        elif name == "ack":
            life.acknowledge(session, case, actor=actor, reason="lead acknowledged", now=now)
            report.applied.append("acknowledged: the first-response clock is stopped")
        elif name == "resolve":
            life.resolve(session, case, actor=actor, reason="lead resolved", now=now)
            until = (
                format_when(case.monitoring_until, self.config.timezone)
                if case.monitoring_until
                else "?"
            )
            report.applied.append(f"resolved; monitoring until {until}")
        elif name == "close":
            life.close(session, case, actor=actor, reason="closed by lead", now=now)
            report.applied.append("closed; the customer got the closing mail")
        elif name == "reopen":
            life.reopen(session, case, actor=actor, reason="reopened by lead", now=now)
            report.applied.append(f"reopened at level {case.level}")
        elif name == "level":
            assert command.level is not None
            life.set_level(session, case, command.level, actor=actor, reason="lead", now=now)
            report.applied.append(
                f"level is now {case.level}; owner {case.owner_name} <{case.owner_email}>, "
                f"customer told the new timeline"
            )
        elif name == "owner":
            self._set_owner(session, case, command.value, actor, report, now)
        elif name == "eta":
            self._set_eta(session, case, command, actor, report, now)
        elif name == "next_update":
            assert command.duration is not None
            if case.state not in ACTIVE_STATES:
                raise LifecycleError(f"{case.key} is {case.state}; no status updates are due")
            case.next_status_due = now + command.duration
            refresh_wakeup(case)
            life.event(
                session,
                case,
                now,
                "next_update_set",
                f"next status update by {case.next_status_due.isoformat()}",
                actor=actor,
            )
            report.applied.append(f"next status update by {self._when(case.next_status_due)}")
        elif name == "note":
            life.add_public_note(session, case, command.value, actor=actor, now=now)
            if send_now:
                report.send_now = True  # after every command, so the mail shows them all
                report.applied.append("public note sent to the customer now")
            else:
                report.applied.append("public note added; it goes out with the next status update")
        elif name == "internal":
            life.add_internal_note(session, case, command.value, actor=actor, now=now)
            report.applied.append("internal note added")
        elif name == "send":
            pass  # a modifier of "note", handled there
        elif name == "help":
            report.help_requested = True
            report.applied.append("help: the command list is below")

    def _known_person(self, email: str) -> Person | None:
        email = email.strip().strip("<>").lower()
        people = [
            *self.config.leads.admins,
            *(p for level in self.config.levels for p in (*level.owners, *level.managers)),
            *(a.lead for a in self.config.accounts if a.lead is not None),
        ]
        return next((p for p in people if p.email == email), None)

    def _set_owner(
        self,
        session: Session,
        case: Case,
        value: str,
        actor: str,
        report: CommandReport,
        now: datetime,
    ) -> None:
        person = self._known_person(value)
        if person is None:
            raise LifecycleError(f"unknown owner {value!r}: not a configured lead, owner or admin")
        if case.state == "closed":
            raise LifecycleError(f"{case.key} is closed; reopen it first")
        if person.email == case.owner_email.lower():
            raise LifecycleError(f"{person.email} already owns {case.key}")
        previous = Recipient(case.owner_email, case.owner_name)
        case.owner_name, case.owner_email = person.name, person.email
        self.lifecycle.event(
            session,
            case,
            now,
            "owner_changed",
            f"owner {previous.email} -> {person.email}",
            actor=actor,
            data={"from": previous.email, "to": person.email},
        )
        new_owner = Recipient(person.email, person.name)
        self.lifecycle.mail.to_staff(session, case, "owner_assigned", [new_owner], now, by=actor)
        self.lifecycle.mail.to_customer(session, case, "owner_change_notice", now)
        report.applied.append(f"owner is now {person.name} <{person.email}>; customer told")

    def _set_eta(
        self,
        session: Session,
        case: Case,
        command: Command,
        actor: str,
        report: CommandReport,
        now: datetime,
    ) -> None:
        if command.duration is not None:
            eta = now + command.duration
        else:
            assert command.when is not None
            eta = command.when.replace(tzinfo=ZoneInfo(self.config.timezone))
        if eta <= now:
            raise LifecycleError(f"the ETA {self._when(eta)} is in the past")
        case.eta = eta
        self.lifecycle.event(
            session,
            case,
            now,
            "eta_set",
            f"ETA {eta.isoformat()}",
            actor=actor,
            data={"eta": eta.isoformat()},
        )
        report.applied.append(f"ETA set to {self._when(eta)}; the customer sees it in updates")

    def _owner_first_reply(self, session: Session, case: Case, sender: str, now: datetime) -> None:
        if (
            sender == case.owner_email.lower()
            and case.first_responded_at is None
            and case.state in ACTIVE_STATES
        ):
            self.lifecycle.acknowledge(
                session, case, actor=sender, reason="owner replied by mail", now=now
            )

    # -- replies to the lead -------------------------------------------------------

    def _when(self, moment: datetime | None) -> str:
        return format_when(moment, self.config.timezone) if moment else "-"

    def _confirm(
        self,
        session: Session,
        case: Case,
        mail: ParsedMail,
        sender: str,
        report: CommandReport,
        now: datetime,
    ) -> None:
        self.lifecycle.mail.to_staff(
            session,
            case,
            "command_confirmation",
            [Recipient(sender)],
            now,
            answering=_answering(mail),
            applied=report.applied,
            rejected=report.rejected,
            help_text=HELP_TEXT if report.help_requested or report.rejected else "",
            eta=self._when(case.eta) if case.eta else "",
        )

    def _refuse(
        self,
        session: Session,
        case: Case,
        mail: ParsedMail,
        sender: str,
        reason: str,
        now: datetime,
    ) -> None:
        if not sender:
            return
        limit = self.config.leads.max_refusals_per_hour
        sent = session.scalar(
            select(func.count())
            .select_from(AutoReplyLog)
            .where(
                AutoReplyLog.address == sender,
                AutoReplyLog.kind == "refusal",
                AutoReplyLog.at > now - timedelta(hours=1),
            )
        )
        if (sent or 0) >= limit:
            return
        add_auto_reply(session, address=sender, at=now, kind="refusal")
        # Sent as customer-style mail: no token, so the refusal itself grants nothing.
        self.outbox.enqueue(
            session,
            case=case,
            kind="command_refused",
            template="command_refused",
            context={"case": case, "reason": reason, "sender": sender},
            to=[Recipient(sender)],
            subject=f"Re: {case.subject}",
            # Threaded on the refused mail only: our staff mail ids carry the token.
            threading=Threading(
                mail.message_id or None, (mail.message_id,) if mail.message_id else ()
            ),
            now=now,
            external=True,
        )


def _answering(mail: ParsedMail) -> Threading:
    """Threading that answers the given mail, as a mail client's reply would."""
    if not mail.message_id:
        return Threading(None, mail.references)
    return Threading(mail.message_id, (*mail.references, mail.message_id))
