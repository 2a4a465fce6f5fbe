"""Detection rules, built once from config; see README "How to add a rule".

Each module of this package holds one rule kind: a class with a ``kind`` (the same
string as its config model's ``kind`` in `gateway.config.rule_kinds`) and a
``from_config`` class method. They are found by scanning the package, so adding a
kind needs no registry line.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from typing import Any

from gateway.classify.rules.base import Rule, RuleContext, RuleResult
from gateway.config import RULE_KINDS, GatewayConfig, RuleKindConfig

# Modules that are helpers of the rules, not rule kinds.
_NOT_KINDS = frozenset({"base", "literal_screen"})


def _discover() -> dict[str, Callable[[Any], Rule]]:
    builders: dict[str, Callable[[Any], Rule]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_KINDS:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            kind = getattr(value, "kind", None)
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and isinstance(kind, str)
                and hasattr(value, "from_config")
            ):
                builders[kind] = value.from_config
    missing = sorted(RULE_KINDS - builders.keys())
    if missing:
        raise ImportError(f"rule kinds with a config model but no rule class: {missing}")
    return builders


_BUILDERS = _discover()


def build_rule(rule: RuleKindConfig) -> Rule:
    kind: str = getattr(rule, "kind")  # noqa: B009 - every kind's model declares it
    return _BUILDERS[kind](rule)


def build_rules(config: GatewayConfig) -> Sequence[Rule]:
    return tuple(build_rule(rule) for rule in config.rules if rule.enabled)


__all__ = ["Rule", "RuleContext", "RuleResult", "build_rule", "build_rules"]
