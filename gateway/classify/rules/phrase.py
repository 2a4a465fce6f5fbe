"""Phrases in the subject or the new text of the body (security, outage, legal...)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.classify.rules.base import RuleContext, RuleResult, fired, not_fired, quote
from gateway.classify.rules.literal_screen import LiteralScreen, fold
from gateway.config.rule_kinds.phrase import PhraseRule
from parsers.model import ParsedMail

_LEADING_FLAGS = re.compile(r"^\(\?([aimsu]+)\)")
# Group references change meaning once patterns are joined and their groups renumbered.
_GROUP_REFERENCE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")


def any_of(patterns: tuple[re.Pattern[str], ...]) -> re.Pattern[str] | None:
    """One pattern that matches wherever any of these does, or None if unsafe to build.

    Most mail fires no phrase rule, and one scan instead of one per phrase is the
    cheaper way to say so. Leading flags such as (?i) that every pattern shares stay
    global; otherwise each becomes flags scoped to its own branch, which is correct
    but scans markedly slower in CPython's engine.
    """
    split: list[tuple[str, str]] = []
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
        split.append((flags, source))
    shared = {flags for flags, _ in split}
    if len(shared) == 1:
        (flags,) = shared
        joined = "|".join(f"(?:{source})" for _, source in split)
        joined = f"(?{flags}){joined}" if flags else joined
    else:
        joined = "|".join(f"(?{f}:{source})" if f else f"(?:{source})" for f, source in split)
    try:
        return re.compile(joined)
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
    literals: LiteralScreen | None = field(default=None, compare=False)

    @classmethod
    def from_config(cls, rule: PhraseRule) -> Phrases:
        patterns = tuple(map(re.compile, rule.phrases))
        return cls(
            rule.name,
            rule.description,
            rule.level,
            patterns,
            combined=any_of(patterns),
            literals=LiteralScreen.of(patterns),
        )

    def check(self, mail: ParsedMail, ctx: RuleContext) -> RuleResult:
        # Only the new text counts: a quoted "outage" from last month is not news.
        for where, text in (("subject", mail.subject), ("body", ctx.new_text)):
            if where in ctx.phrase_free:
                continue
            if self.literals is not None and not self.literals.may_match(text, fold(text)):
                continue
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
                return fired(self, self.level, f"{where} says {match.group(0)!r} in {context}")
        return not_fired(
            self, f"none of {len(self.patterns)} phrase(s) in subject or new body text"
        )


class PhraseScreen:
    """Every phrase of every phrase rule at once: one look tells the rules whether
    any of them needs to scan at all, which for most mail it does not.

    The look is a substring test for the phrases' literals where every pattern has
    them (gateway/classify/rules/literal_screen.py), and one joined pattern otherwise or when a
    literal is present.
    """

    def __init__(self, rules: Iterable[object]) -> None:
        patterns = tuple(p for rule in rules if isinstance(rule, Phrases) for p in rule.patterns)
        self.combined = any_of(patterns) if patterns else None
        self.literals = LiteralScreen.of(patterns) if patterns else None
        self.active = bool(patterns)

    def _may_match(self, text: str) -> bool:
        if self.literals is not None and not self.literals.may_match(text, fold(text)):
            return False
        return self.combined is None or self.combined.search(text) is not None

    def phrase_free(self, subject: str, body: str) -> frozenset[str]:
        if not self.active:
            return frozenset({"subject", "body"})
        return frozenset(
            where
            for where, text in (("subject", subject), ("body", body))
            if not self._may_match(text)
        )
