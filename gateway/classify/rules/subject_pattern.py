"""A pattern in the subject, such as URGENT, sets the level directly."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.classify.rules.base import RuleContext, RuleResult, fired, not_fired, quote
from gateway.config.rule_kinds.subject_pattern import SubjectPatternRule
from parsers.model import ParsedMail


@dataclass(frozen=True)
class SubjectPattern:
    name: str
    description: str
    level: int
    pattern: re.Pattern[str]
    kind: str = "subject_pattern"

    @classmethod
    def from_config(cls, rule: SubjectPatternRule) -> SubjectPattern:
        flags = re.IGNORECASE if rule.ignore_case else 0
        return cls(rule.name, rule.description, rule.level, re.compile(rule.pattern, flags))

    def check(self, mail: ParsedMail, ctx: RuleContext) -> RuleResult:
        match = self.pattern.search(mail.subject)
        if match is None:
            return not_fired(
                self, f"subject {quote(mail.subject)} does not match /{self.pattern.pattern}/"
            )
        return fired(self, self.level, f"subject {quote(mail.subject)} matches {match.group(0)!r}")
