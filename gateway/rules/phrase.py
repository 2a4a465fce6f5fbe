"""Phrases in the subject or the new text of the body (security, outage, legal...)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.config import PhraseRule
from gateway.rules.base import RuleContext, RuleResult, quote
from parsers.model import ParsedMail


@dataclass(frozen=True)
class Phrases:
    name: str
    description: str
    level: int
    patterns: tuple[re.Pattern[str], ...]
    kind: str = "phrase"

    @classmethod
    def from_config(cls, rule: PhraseRule) -> Phrases:
        return cls(rule.name, rule.description, rule.level, tuple(map(re.compile, rule.phrases)))

    def check(self, mail: ParsedMail, ctx: RuleContext) -> RuleResult:
        # Only the new text counts: a quoted "outage" from last month is not news.
        for where, text in (("subject", mail.subject), ("body", ctx.new_text)):
            for pattern in self.patterns:
                match = pattern.search(text)
                if match is None:
                    continue
                start = max(0, match.start() - 30)
                context = quote(text[start : match.end() + 30])
                return RuleResult(
                    self.name,
                    self.kind,
                    self.description,
                    fired=True,
                    level=self.level,
                    evidence=f"{where} says {match.group(0)!r} in {context}",
                )
        return RuleResult(
            self.name,
            self.kind,
            self.description,
            fired=False,
            evidence=f"none of {len(self.patterns)} phrase(s) in subject or new body text",
        )
