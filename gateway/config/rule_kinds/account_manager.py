"""A customer copied their account manager: the rule needs no settings."""

from __future__ import annotations

from typing import Literal

from gateway.config.rule_kinds.base import RuleKindConfig


class AccountManagerRule(RuleKindConfig):
    kind: Literal["account_manager"]
