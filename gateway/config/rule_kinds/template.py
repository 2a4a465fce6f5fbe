"""The agents' escalation template: how its Priority maps to a level, which fields it needs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.config.rule_kinds.base import RuleKindConfig


class TemplateRule(RuleKindConfig):
    kind: Literal["template"]
    priority_levels: dict[str, int] = Field(
        default_factory=lambda: {"low": 1, "medium": 2, "high": 3, "critical": 4}
    )
    required_fields: tuple[str, ...] = (
        "priority",
        "customer",
        "ticket",
        "issue_summary",
        "customer_impact",
    )
