"""Phrases in the subject or the new text of the body (security, outage, legal...)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.config import PhraseRule
from gateway.rules.base import RuleContext, RuleResult, quote
from parsers.model import ParsedMail

_LEADING_FLAGS = re.compile(r"^\(\?([aimsu]+)\)")
# Group references change meaning once patterns are joined and their groups renumbered.
_GROUP_REFERENCE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")


def any_of(patterns: tuple[re.Pattern[str], ...]) -> re.Pattern[str] | None:
    """One pattern that matches wherever any of these does, or None if unsafe to build.

    Most mail fires no phrase rule, and scanning the body once instead of once per
    phrase halves the cost of saying so. Each pattern's leading flags, such as (?i),
    become flags scoped to its own branch.
    """
    branches: list[str] = []
    for pattern in patterns:
        if pattern.groupindex or _GROUP_REFERENCE.search(pattern.pattern):
            return None
        source = pattern.pattern
        leading = _LEADING_FLAGS.match(source)
        flags = ""
        if leading:
            flags, source = leading.group(1).replace("u", ""), source[leading.end() :]
        if re.search(r"\(\?[aiLmsux]*x", source):
            return None  # verbose mode: a comment would swallow the branches after it
        branches.append(f"(?{flags}:{source})" if flags else f"(?:{source})")
    try:
        return re.compile("|".join(branches))
    except re.error:
        return None


@dataclass(frozen=True)
class Phrases:
    name: str
    description: str
    level: int
    patterns: tuple[re.Pattern[str], ...]
    kind: str = "phrase"
    combined: re.Pattern[str] | None = field(default=None, compare=False)

    @classmethod
    def from_config(cls, rule: PhraseRule) -> Phrases:
        patterns = tuple(map(re.compile, rule.phrases))
        return cls(rule.name, rule.description, rule.level, patterns, combined=any_of(patterns))

    def check(self, mail: ParsedMail, ctx: RuleContext) -> RuleResult:
        # Only the new text counts: a quoted "outage" from last month is not news.
        for where, text in (("subject", mail.subject), ("body", ctx.new_text)):
            if self.combined is not None and self.combined.search(text) is None:
                continue
            # Something matched: the patterns in order, so the evidence names the
            # first phrase of the rule that matched, as it always has.
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
