"""Leads steer a case by replying to its mail: authorize, apply commands, confirm.

Runs inside the worker's transaction. Every outcome lands in the case's audit trail:
a refused attempt with its reason (gateway/leads/refusals.py), each applied command
as the lifecycle event it caused, and each invalid command with why. A lead always
hears back (once per hour at most for refusals), so a typo on a phone never fails
silently; a stranger never does.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.cases.accounts import AccountDirectory
from gateway.cases.lifecycle import Lifecycle, LifecycleError
from gateway.cases.sla import ACTIVE_STATES
from gateway.config import GatewayConfig
from gateway.leads import command_log, token_retirement
from gateway.leads.auth import LeadAuthorizer, places
from gateway.leads.command_types import CommandContext, CommandReport, ParsedCommands
from gateway.leads.commands import BY_NAME, HELP_TEXT, parse_commands
from gateway.leads.refusals import Refusals, answering
from gateway.outbound.outbox import Outbox, Recipient
from gateway.outbound.tokens import ReplyTokens
from gateway.timefmt import format_when
from gateway.timeline.status_updates import StatusUpdates
from parsers.model import ParsedMail
from store.models import Case

log = logging.getLogger("gateway.leads")


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
        self.refusals = Refusals(config, lifecycle)

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
        authorizer = LeadAuthorizer(self.config, tokens)
        auth = authorizer.authorize(session, case, mail, rcpt_tos)
        if not auth.allowed:
            return self.refusals.refuse(session, case, mail, auth, now)
        sender = auth.sender
        command_log.record(
            session,
            case,
            sender=sender,
            message_id=mail.message_id,
            now=now,
            refusal=None,
            detail=auth.reason,
        )
        reached_customer = self._reaches_customer(case, mail)
        if reached_customer:
            self.lifecycle.record_human_update(session, case, actor=sender, now=now)
        parsed = parse_commands(new_text)
        report = CommandReport(rejected=[(e.line, e.reason) for e in parsed.errors])
        self._apply_all(session, case, parsed, sender, report, now)
        self._keep_free_text(session, case, parsed, sender, report, now)
        if self._is_first_response(parsed, report, reached_customer):
            self._owner_first_reply(session, case, sender, now)
        self._retire_exposed_tokens(session, case, mail, rcpt_tos, authorizer, report, now)
        summary = f"{len(report.applied)} applied, {len(report.rejected)} rejected"
        self.lifecycle.event(
            session,
            case,
            now,
            "command_reply",
            f"{summary} ({auth.reason})",
            actor=sender,
            data={
                "applied": report.applied,
                "rejected": report.rejected,
                "auth": auth.reason,
                "message_id": mail.message_id,
            },
        )
        log.info("lead command mail applied: case=%s from=%s %s", case.key, sender, summary)
        self._confirm(session, case, mail, sender, report, now)
        return summary

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
            else:
                report.done.append(command.name)
        if report.send_now and case.state != "closed":
            self.status_updates.send_now(session, case, now)

    def _keep_free_text(
        self,
        session: Session,
        case: Case,
        parsed: ParsedCommands,
        sender: str,
        report: CommandReport,
        now: datetime,
    ) -> None:
        if not parsed.free_text or case.state == "closed":
            return
        self.lifecycle.add_internal_note(session, case, parsed.free_text, actor=sender, now=now)
        if parsed.empty:
            report.applied.append("no commands found: your reply was kept as an internal note")
        else:
            report.applied.append("the text after the commands was kept as an internal note")

    @staticmethod
    def _is_first_response(
        parsed: ParsedCommands, report: CommandReport, reached_customer: bool
    ) -> bool:
        """An accepted reply, or one the customer got, is the owner responding.

        A reply whose commands were all rejected is not, nor asking for help; a
        reopen starts a new first-response clock that its own reply must not stop.
        """
        specs = [BY_NAME[name] for name in report.done]
        if any(spec.restarts_clock for spec in specs):
            return False
        note_only = parsed.empty and bool(parsed.free_text)
        return reached_customer or note_only or any(spec.first_response for spec in specs)

    def _owner_first_reply(self, session: Session, case: Case, sender: str, now: datetime) -> None:
        if (
            sender == case.owner_email.lower()
            and case.first_responded_at is None
            and case.state in ACTIVE_STATES
        ):
            self.lifecycle.acknowledge(
                session, case, actor=sender, reason="owner replied by mail", now=now
            )

    # -- who saw the reply ---------------------------------------------------------

    def _reaches_customer(self, case: Case, mail: ParsedMail) -> bool:
        addressed = {a.email.lower() for a in mail.all_recipients}
        cc = {str(c.get("email", "")).lower() for c in case.customer_cc}
        return bool(addressed & ({case.customer_email.lower()} | cc))

    def _outsiders(self, case: Case, mail: ParsedMail, staff: list[str]) -> list[str]:
        """Addressees that are neither our own addresses nor people on the case's staff."""
        own = {a.lower() for a in self.config.own_addresses}
        found = []
        for address in (a.email.lower() for a in mail.all_recipients):
            local, _, domain = address.partition("@")
            if f"{local.split('+', 1)[0]}@{domain}" in own or address in staff:
                continue
            found.append(address)
        return list(dict.fromkeys(found))

    def _retire_exposed_tokens(
        self,
        session: Session,
        case: Case,
        mail: ParsedMail,
        rcpt_tos: list[str],
        authorizer: LeadAuthorizer,
        report: CommandReport,
        now: datetime,
    ) -> None:
        """A reply copied outside the case hands them its tokens: those stop working."""
        staff = authorizer.staff(case)
        outsiders = self._outsiders(case, mail, staff)
        if not outsiders:
            return
        reason = f"a reply carrying it was copied to {', '.join(outsiders)}"
        found = authorizer.tokens.found(places(mail, rcpt_tos))
        holders = token_retirement.retire(
            session, case, authorizer.tokens, found, staff, reason, now
        )
        if not holders:
            return
        self.lifecycle.event(
            session,
            case,
            now,
            "reply_token_retired",
            f"reply tokens of {', '.join(sorted(set(holders)))} retired: {reason}",
            actor="gateway",
            data={"holders": holders, "copied_to": outsiders},
        )
        report.notices.append(
            f"your reply was copied to {', '.join(outsiders)}, so the reply address in it "
            "no longer works; reply to this mail or a newer one next time"
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
            answering=answering(mail),
            applied=report.applied,
            rejected=report.rejected,
            notices=report.notices,
            help_text=HELP_TEXT if report.help_requested or report.rejected else "",
            eta=self._when(case.eta) if case.eta else "",
        )
