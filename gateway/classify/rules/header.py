"""Escalation headers (X-Escalation-Level, X-Priority...), obeyed only from trusted senders.

Anyone can write a header, so a header rule that trusted every sender would let any
customer page the executive team. Trust is by sender address or domain, the same idea
as trusted PostMaster sources in other helpdesks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.classify.rules.base import RuleContext, RuleResult, fired, not_fired
from gateway.config.rule_kinds.header import HeaderRule
from parsers.model import ParsedMail


@dataclass(frozen=True)
class EscalationHeader:
    name: str
    description: str
    level: int
    header: str
    pattern: re.Pattern[str]
    level_from_value: bool
    trusted_senders: frozenset[str]
    kind: str = "header"

    @classmethod
    def from_config(cls, rule: HeaderRule) -> EscalationHeader:
        return cls(
            rule.name,
            rule.description,
            rule.level,
            rule.header,
            re.compile(rule.pattern, re.IGNORECASE),
            rule.level_from_value,
            frozenset(rule.trusted_senders),
        )

    def _trusted(self, sender: str) -> bool:
        if not self.trusted_senders:
            return False
        domain = sender.rpartition("@")[2]
        return sender in self.trusted_senders or domain in self.trusted_senders

    def check(self, mail: ParsedMail, ctx: RuleContext) -> RuleResult:
        value = mail.header(self.header)
        if value is None:
            return not_fired(self, f"no {self.header} header")
        match = self.pattern.search(value)
        if match is None:
            return not_fired(
                self, f"{self.header}: {value!r} does not match /{self.pattern.pattern}/"
            )
        sender = mail.from_.email if mail.from_ else ""
        if not self._trusted(sender):
            return not_fired(
                self, f"{self.header}: {value!r} ignored, sender {sender!r} is not trusted"
            )
        level = self.level
        if self.level_from_value:
            digits = re.search(r"[1-4]", value)
            if digits is None:
                return not_fired(self, f"{self.header}: {value!r} holds no level 1-4")
            level = int(digits.group(0))
        return fired(self, level, f"{self.header}: {value!r} from trusted sender {sender}")
