"""A customer copies their account manager: the account is known and a lead is needed."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.classify.rules.base import RuleContext, RuleResult, fired, not_fired
from gateway.config.rule_kinds.account_manager import AccountManagerRule
from parsers.model import ParsedMail


@dataclass(frozen=True)
class AccountManagerCopied:
    name: str
    description: str
    level: int
    kind: str = "account_manager"

    @classmethod
    def from_config(cls, rule: AccountManagerRule) -> AccountManagerCopied:
        return cls(rule.name, rule.description, rule.level)

    def check(self, mail: ParsedMail, ctx: RuleContext) -> RuleResult:
        sender = mail.from_.email if mail.from_ else ""
        for header, addresses in (("Cc", mail.cc), ("To", mail.to)):
            for address in addresses:
                found = ctx.directory.manager(address.email)
                if found is None or address.email == sender:
                    continue
                account, manager = found
                return fired(
                    self,
                    self.level,
                    f"{header} has {manager.email}, account manager of {account.name}",
                    {"account": account.name, "account_manager": manager.email},
                )
        return not_fired(self, "no configured account manager in To or Cc")
