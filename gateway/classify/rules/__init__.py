"""Detection rules, built once from config; see README "How to add a rule"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.classify.rules.account_manager import AccountManagerCopied
from gateway.classify.rules.base import Rule, RuleContext, RuleResult
from gateway.classify.rules.header import EscalationHeader
from gateway.classify.rules.phrase import Phrases
from gateway.classify.rules.subject_pattern import SubjectPattern
from gateway.classify.rules.template import EscalationTemplateRule
from gateway.config.load import (
    AccountManagerRule,
    GatewayConfig,
    HeaderRule,
    PhraseRule,
    SubjectPatternRule,
    TemplateRule,
)

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
