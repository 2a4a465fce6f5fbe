"""What every detection rule is: a name, a description and a check that keeps evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.cases.accounts import AccountDirectory
from parsers.escalation_template import EscalationTemplate
from parsers.model import ParsedMail


@dataclass(frozen=True)
class RuleContext:
    """What a rule may look at besides the mail itself."""

    directory: AccountDirectory
    new_text: str  # the reply's own text, quoted history removed
    template: EscalationTemplate | None
    envelope_sender: str | None
    # Where ("subject", "body") no phrase of any phrase rule can match: one scan by
    # the classifier spares each phrase rule its own (gateway/classify/rules/phrase.py).
    phrase_free: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RuleResult:
    rule: str
    kind: str
    description: str
    fired: bool
    evidence: str
    level: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "description": self.description,
            "fired": self.fired,
            "level": self.level,
            "evidence": self.evidence,
            "data": self.data,
        }


class Rule(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def description(self) -> str: ...

    def check(self, mail: ParsedMail, ctx: RuleContext) -> RuleResult: ...


def fired(rule: Rule, level: int, evidence: str, data: dict[str, Any] | None = None) -> RuleResult:
    """The result of a rule that fired at level, with what it found."""
    return RuleResult(
        rule.name,
        rule.kind,
        rule.description,
        fired=True,
        level=level,
        evidence=evidence,
        data={} if data is None else data,
    )


def not_fired(rule: Rule, evidence: str) -> RuleResult:
    """The result of a rule that did not fire, with why not."""
    return RuleResult(rule.name, rule.kind, rule.description, fired=False, evidence=evidence)


def quote(text: str, limit: int = 80) -> str:
    """A short excerpt for evidence lines."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
