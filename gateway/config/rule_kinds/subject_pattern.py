"""A regular expression on the subject."""

from __future__ import annotations

from typing import Literal

from gateway.config.rule_kinds.base import RuleKindConfig
from gateway.config.sections import Regex


class SubjectPatternRule(RuleKindConfig):
    kind: Literal["subject_pattern"]
    pattern: Regex
    ignore_case: bool = False
