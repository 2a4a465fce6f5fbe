"""The accounts directory: customer domains, their account managers and named leads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.config import AccountConfig, Person


@dataclass(frozen=True)
class AccountDirectory:
    by_domain: dict[str, AccountConfig]
    by_manager: dict[str, AccountConfig]

    @classmethod
    def build(cls, accounts: Iterable[AccountConfig]) -> AccountDirectory:
        by_domain: dict[str, AccountConfig] = {}
        by_manager: dict[str, AccountConfig] = {}
        for account in accounts:
            for domain in account.domains:
                by_domain[domain] = account
            for manager in account.account_managers:
                by_manager[manager.email] = account
        return cls(by_domain, by_manager)

    def for_address(self, email: str) -> AccountConfig | None:
        """The account a customer address belongs to, matching subdomains too."""
        domain = email.rpartition("@")[2].lower()
        while domain:
            account = self.by_domain.get(domain)
            if account is not None:
                return account
            _, _, domain = domain.partition(".")
        return None

    def manager(self, email: str) -> tuple[AccountConfig, Person] | None:
        account = self.by_manager.get(email.lower())
        if account is None:
            return None
        person = next(p for p in account.account_managers if p.email == email.lower())
        return account, person
