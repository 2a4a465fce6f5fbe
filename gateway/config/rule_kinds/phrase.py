"""Phrases in the subject or the reply's new text."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.config.rule_kinds.base import RuleKindConfig
from gateway.config.sections import Regex


class PhraseRule(RuleKindConfig):
    kind: Literal["phrase"]
    phrases: tuple[Regex, ...] = Field(min_length=1)
