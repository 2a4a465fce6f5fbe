"""A header set by a trusted system, such as X-Escalation-Level."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from gateway.config.rule_kinds.base import RuleKindConfig
from gateway.config.sections import Regex


class HeaderRule(RuleKindConfig):
    kind: Literal["header"]
    header: str
    pattern: Regex
    level_from_value: bool = False
    trusted_senders: tuple[str, ...] = ()

    @field_validator("trusted_senders")
    @classmethod
    def _lower(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in values)
