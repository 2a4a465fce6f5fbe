"""Who may command a case by email, checked in layers.

1. Role: the mail has one From address, and it is the case's owner, an owner or
   manager of its level, the named lead of its account, or an admin from config.
2. Once: the mail's Message-ID was not applied on this case before
   (gateway/leads/command_log.py), so a re-sent copy does nothing.
3. Token: the mail carries a reply token of this case issued to that very address
   and not retired (gateway/outbound/tokens.py, gateway/leads/token_retirement.py),
   so a forged From alone, or with somebody else's token, does nothing.
4. Optionally, our border MTA vouches for the From domain: the topmost
   Authentication-Results with a trusted authserv-id has a dmarc=pass or an aligned
   dkim=pass (gateway/leads/sender_auth.py).

A mail is treated as a command attempt when its sender holds a role, or when it
carries anything shaped like a staff token and does not come from the customer's
side; everything else on a case thread is a customer reply, whose "status:" lines
are just text. A customer's reply-all may carry a lead's reply address: it is still
the customer's mail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import getaddresses

from sqlalchemy.orm import Session

from gateway.config import GatewayConfig
from gateway.leads import command_log, token_retirement
from gateway.leads.sender_auth import check_sender
from gateway.outbound.tokens import FoundToken, ReplyTokens
from gateway.timefmt import format_when
from parsers.model import ParsedMail
from store.models import Case


@dataclass(frozen=True)
class Authorization:
    allowed: bool
    reason: str
    role: str | None
    code: str = ""  # one of REFUSAL_CODES (gateway/leads/command_log.py) when refused
    sender: str = ""


def places(mail: ParsedMail, rcpt_tos: Iterable[str]) -> list[str]:
    """Everywhere a token may travel: recipients, subject and the thread's ids."""
    return [
        *rcpt_tos,
        *(a.email for a in mail.all_recipients),
        *mail.header_values("delivered-to"),
        *mail.header_values("x-original-to"),
        mail.subject,
        *mail.thread_ids,
    ]


def single_sender(mail: ParsedMail) -> str:
    """The one From address, lower-cased; "" for none or several."""
    addresses = [a for _, a in getaddresses(list(mail.header_values("from"))) if a]
    if len(addresses) != 1 or mail.from_ is None:
        return ""
    return mail.from_.email.lower()


def is_customer_side(case: Case, address: str) -> bool:
    cc = {str(c.get("email", "")).lower() for c in case.customer_cc}
    return address.lower() == case.customer_email.lower() or address.lower() in cc


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

    def staff(self, case: Case) -> list[str]:
        """Every address a staff mail about the case may have gone to."""
        people = [
            *self.config.leads.admins,
            *(p for level in self.config.levels for p in (*level.owners, *level.managers)),
            *(a.lead for a in self.config.accounts if a.lead is not None),
        ]
        return list(dict.fromkeys([case.owner_email.lower(), *(p.email for p in people)]))

    def is_command_attempt(self, case: Case, mail: ParsedMail, rcpt_tos: Iterable[str]) -> bool:
        sender = mail.from_.email if mail.from_ else ""
        if self.role(case, sender) is not None:
            return True
        if is_customer_side(case, sender):
            return False
        return bool(self.tokens.found(places(mail, rcpt_tos)))

    def authorize(
        self, session: Session, case: Case, mail: ParsedMail, rcpt_tos: Iterable[str]
    ) -> Authorization:
        sender = single_sender(mail)
        if not sender:
            return Authorization(
                False, "the mail needs exactly one From address", None, "no_sender"
            )
        role = self.role(case, sender)
        if role is None:
            reason = f"{sender} holds no lead role on {case.key}"
            return Authorization(False, reason, None, "no_role", sender)

        def refuse(code: str, reason: str) -> Authorization:
            return Authorization(False, reason, role, code, sender)

        if not mail.message_id:
            return refuse(
                "no_message_id",
                "the mail has no Message-ID, so a copy of it could not be told apart",
            )
        earlier = command_log.applied_before(session, case, mail.message_id)
        if earlier is not None:
            when = format_when(earlier.at, self.config.timezone)
            return refuse(
                "replayed",
                f"Message-ID {mail.message_id} was already applied on {case.key} at {when}",
            )
        refused = self._token_refusal(
            session, case, sender, self.tokens.found(places(mail, rcpt_tos))
        )
        if refused is not None:
            return refuse(*refused)
        leads = self.config.leads
        if not leads.require_authentication:
            return Authorization(True, f"{role}, token valid", role, sender=sender)
        checked = check_sender(mail, sender.rpartition("@")[2], leads.trusted_authserv_ids)
        if not checked.passed:
            return refuse(checked.code, checked.detail)
        return Authorization(True, f"{role}, token valid, {checked.detail}", role, sender=sender)

    def _token_refusal(
        self, session: Session, case: Case, sender: str, found: tuple[FoundToken, ...]
    ) -> tuple[str, str] | None:
        """(code, reason) when no live token of this case issued to the sender is there."""
        key = case.key or ""
        mine = [t for t in found if t.case_key == key]
        own = [t for t in mine if self.tokens.issued_to(t, sender)]
        if own:
            retirements = token_retirement.retired(session, case, sender, own)
            if len(retirements) < len(own):
                return None
            last = max(retirements.values(), key=lambda r: r.retired_at)
            when = format_when(last.retired_at, self.config.timezone)
            return (
                "retired_token",
                f"this reply token was retired at {when} ({last.reason}); "
                f"reply to a newer gateway email about {key}",
            )
        others = sorted(
            {t.case_key for t in found if t.case_key != key and self.tokens.issued_to(t, sender)}
        )
        if others:
            return (
                "other_case_token",
                f"the reply carries the token of {', '.join(others)}, not of {key}",
            )
        holder = next((h for t in mine if (h := self.tokens.holder(t, self.staff(case)))), None)
        if holder is not None:
            return (
                "other_person_token",
                f"the reply token was sent to {holder} and works only from that address",
            )
        if any(self.tokens.legacy_valid(t) for t in mine):
            return (
                "old_token",
                f"the reply address is of the old kind, shared by everyone on {key}; "
                "reply to this mail or to a newer gateway email instead",
            )
        return "no_token", f"no valid {key} reply token: reply to a gateway email about the case"
