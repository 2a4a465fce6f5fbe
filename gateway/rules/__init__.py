"""Detection rules, built once from config; see README "How to add a rule"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.config import (
    AccountManagerRule,
    GatewayConfig,
    HeaderRule,
    PhraseRule,
    SubjectPatternRule,
    TemplateRule,
)
from gateway.rules.account_manager import AccountManagerCopied
from gateway.rules.base import Rule, RuleContext, RuleResult
from gateway.rules.header import EscalationHeader
from gateway.rules.phrase import Phrases
from gateway.rules.subject_pattern import SubjectPattern
from gateway.rules.template import EscalationTemplateRule

# One entry per config `kind`; adding a rule kind means one module and one line here.
_BUILDERS: dict[type[Any], Callable[[Any], Rule]] = {
    AccountManagerRule: AccountManagerCopied.from_config,
    SubjectPatternRule: SubjectPattern.from_config,
    TemplateRule: EscalationTemplateRule.from_config,
    HeaderRule: EscalationHeader.from_config,
    PhraseRule: Phrases.from_config,
}


def build_rules(config: GatewayConfig) -> Sequence[Rule]:
    return tuple(_BUILDERS[type(rule)](rule) for rule in config.rules if rule.enabled)


__all__ = ["Rule", "RuleContext", "RuleResult", "build_rules"]
