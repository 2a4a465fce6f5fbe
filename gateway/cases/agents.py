"""Agent escalations: who is one of ours, and who the customer is when an agent writes.

An agent at our own domain who sends the escalation template escalates *for* a
customer: the template's Customer field (a name, an address, or both) is the case's
customer and account, and the agent stays the customer's point of contact. The
agent is kept on the case as a copied person with the role "agent", so every mail
to the customer side reaches them too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.config import GatewayConfig
from gateway.outbound.compose import Recipient
from store.models import Case

AGENT_ROLE = "agent"

_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# What is left around an address once it is taken out: "Bob <>", "Bob ()", "Bob, ".
_LEFTOVER = " \t<>()[]\"',;:-"


@dataclass(frozen=True)
class NamedCustomer:
    name: str
    email: str


def customer_from_field(text: str) -> NamedCustomer:
    """The template's Customer field: "Bob Buyer <bob@acme.example>", an address alone,
    "Acme Corp (bob@acme.example)" or just a name."""
    text = " ".join(text.split())
    found = _ADDRESS.search(text)
    if found is None:
        return NamedCustomer(text.strip(_LEFTOVER), "")
    name = (text[: found.start()] + " " + text[found.end() :]).strip(_LEFTOVER)
    return NamedCustomer(" ".join(name.split()).strip(_LEFTOVER), found.group(0).lower())


def _domain_of(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


class OurPeople:
    """Our own addresses and domains, as the config knows them."""

    def __init__(self, domains: Iterable[str], addresses: Iterable[str]) -> None:
        self.domains = frozenset(d.lower() for d in domains if d)
        self.addresses = frozenset(a.lower() for a in addresses if a)

    @classmethod
    def build(cls, config: GatewayConfig) -> OurPeople:
        """Our domains: the From address's, the accepted recipients' and domains, the
        extra own addresses'. Our people: every level's owners and managers, the
        admins, and each account's lead and account managers."""
        own = {config.outbound.from_address, *config.smtp.accept_recipients}
        own |= set(config.auto_reply.own_addresses)
        domains = {_domain_of(a) for a in own} | set(config.smtp.accept_domains)
        people = [p for level in config.levels for p in (*level.owners, *level.managers)]
        people += list(config.leads.admins)
        for account in config.accounts:
            people += [*account.account_managers, *([account.lead] if account.lead else [])]
        return cls(domains, [p.email for p in people])

    def is_ours(self, email: str) -> bool:
        email = email.strip().lower()
        if email in self.addresses:
            return True
        domain = _domain_of(email)
        # A subdomain of ours is ours too (eu.example.com under example.com).
        return any(domain == d or domain.endswith("." + d) for d in self.domains)


def agent_entry(agent: Recipient) -> dict[str, Any]:
    """The agent as a copied person on the case (Case.customer_cc)."""
    return {"email": agent.email, "name": agent.name, "role": AGENT_ROLE}


def agents_of(case: Case) -> list[Recipient]:
    return [
        Recipient(str(c["email"]), str(c.get("name", "")))
        for c in case.customer_cc
        if c.get("role") == AGENT_ROLE
    ]


def customer_side(case: Case) -> set[str]:
    """Addresses a person writes to when they inform the customer: theirs or their agent's."""
    side = {a.email.lower() for a in agents_of(case)}
    if case.customer_email:
        side.add(case.customer_email.lower())
    return side
