"""Leads steer a case by replying to its mail: authorize, apply commands, confirm.

Runs inside the worker's transaction. Every outcome lands in the case's audit trail:
a refused attempt with its reason, each applied command as the lifecycle event it
caused, and each invalid command with why. The lead always hears back (once per hour
at most for refusals), so a typo on a phone never fails silently.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cases.accounts import AccountDirectory
from gateway.cases.lifecycle import Lifecycle, LifecycleError
from gateway.cases.sla import ACTIVE_STATES
from gateway.config import GatewayConfig
from gateway.leads.auth import LeadAuthorizer
from gateway.leads.command_types import CommandContext, CommandReport, ParsedCommands
from gateway.leads.commands import BY_NAME, HELP_TEXT, parse_commands
from gateway.outbound.outbox import Outbox, Recipient, Threading
from gateway.outbound.tokens import ReplyTokens
from gateway.timefmt import format_when
from gateway.timeline.status_updates import StatusUpdates
from parsers.model import ParsedMail
from store.appends import add_auto_reply
from store.models import AutoReplyLog, Case


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
        self._apply_all(session, case, parsed, sender, report, now)
        if report.send_now and case.state != "closed":
            self.status_updates.send_now(session, case, now)
        if parsed.free_text and case.state != "closed":
            self.lifecycle.add_internal_note(session, case, parsed.free_text, actor=sender, now=now)
            if parsed.empty:
                report.applied.append("no commands found: your reply was kept as an internal note")
            else:
                report.applied.append("the text after the commands was kept as an internal note")
        # Asking for help or reopening is not contact with the customer.
        if all(BY_NAME[c.name].first_response for c in parsed.commands):
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

    def _apply_all(
        self,
        session: Session,
        case: Case,
        parsed: ParsedCommands,
        sender: str,
        report: CommandReport,
        now: datetime,
    ) -> None:
        """Each command through its table entry; a refusal by the case is "not done"."""
        ctx = CommandContext(
            session,
            case,
            sender,
            now,
            self.config,
            self.lifecycle,
            report,
            send_now=bool(parsed.named("send")),
        )
        for command in parsed.commands:
            try:
                BY_NAME[command.name].apply(ctx, command)
            except LifecycleError as exc:
                report.rejected.append((command.line, str(exc)))

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
