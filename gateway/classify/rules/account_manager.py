"""A customer copies their account manager: the account is known and a lead is needed."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.classify.rules.base import RuleContext, RuleResult
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
                return RuleResult(
                    self.name,
                    self.kind,
                    self.description,
                    fired=True,
                    level=self.level,
                    evidence=f"{header} has {manager.email}, account manager of {account.name}",
                    data={"account": account.name, "account_manager": manager.email},
                )
        return RuleResult(
            self.name,
            self.kind,
            self.description,
            fired=False,
            evidence="no configured account manager in To or Cc",
        )
