"""Who may command a case by email, checked in layers.

1. Role: the sender is the case's owner, an owner or manager of its level, the named
   lead of its account, or an admin from config.
2. Token: the reply carries this case's reply token (see gateway/outbound/tokens.py), so
   a forged From alone does nothing.
3. Optionally, a trusted server vouches for the sender with dkim=pass or dmarc=pass.

A mail is treated as a command attempt when its sender holds a role or it carries any
staff token; everything else on a case thread is a customer reply, whose "status:"
lines are just text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.leads.sender_auth import authenticated_by
from gateway.outbound.tokens import ReplyTokens
from parsers.model import ParsedMail
from store.models import Case


@dataclass(frozen=True)
class Authorization:
    allowed: bool
    reason: str
    role: str | None


def _places(mail: ParsedMail, rcpt_tos: Iterable[str]) -> list[str]:
    """Everywhere a token may travel: recipients, subject and the thread's ids."""
    return [
        *rcpt_tos,
        *(a.email for a in mail.all_recipients),
        *mail.header_values("delivered-to"),
        *mail.header_values("x-original-to"),
        mail.subject,
        *mail.thread_ids,
    ]


class LeadAuthorizer:
    def __init__(self, config: GatewayConfig, tokens: ReplyTokens) -> None:
        self.config = config
        self.tokens = tokens

    def role(self, case: Case, email: str) -> str | None:
        email = email.lower()
        if email == case.owner_email.lower():
            return "owner of the case"
        if any(p.email == email for p in self.config.leads.admins):
            return "admin"
        level = self.config.level(case.level)
        if any(p.email == email for p in level.owners):
            return f"level {case.level} owner"
        if any(p.email == email for p in level.managers):
            return f"level {case.level} manager"
        for account in self.config.accounts:
            if account.name == case.account and account.lead and account.lead.email == email:
                return f"lead of account {account.name}"
        return None

    def is_command_attempt(self, case: Case, mail: ParsedMail, rcpt_tos: Iterable[str]) -> bool:
        sender = mail.from_.email if mail.from_ else ""
        if self.role(case, sender) is not None:
            return True
        return bool(self.tokens.found(_places(mail, rcpt_tos)))

    def authorize(self, case: Case, mail: ParsedMail, rcpt_tos: Iterable[str]) -> Authorization:
        sender = mail.from_.email if mail.from_ else ""
        role = self.role(case, sender)
        if role is None:
            return Authorization(
                False, f"{sender or 'the sender'} holds no lead role on {case.key}", None
            )
        found = self.tokens.found(_places(mail, rcpt_tos))
        if not found.get(case.key or ""):
            if any(found.values()):
                other = ", ".join(sorted(k for k, ok in found.items() if ok))
                return Authorization(
                    False, f"the reply carries the token of {other}, not of {case.key}", role
                )
            return Authorization(
                False,
                f"no valid {case.key} reply token: reply to a gateway email about the case",
                role,
            )
        leads = self.config.leads
        if leads.require_authentication:
            vouched = authenticated_by(mail, leads.trusted_authserv_ids)
            if vouched is None:
                return Authorization(
                    False,
                    "no dkim=pass or dmarc=pass from a trusted server in Authentication-Results",
                    role,
                )
            return Authorization(True, f"{role}, token valid, {vouched}", role)
        return Authorization(True, f"{role}, token valid", role)
