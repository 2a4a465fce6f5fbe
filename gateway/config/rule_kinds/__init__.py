"""Rule kinds' config models, found by scanning this package: one module per kind.

A module here that defines a subclass of `RuleKindConfig` with a ``kind: Literal[...]``
field adds that kind to the ``[[rules]]`` union; nothing else needs to list it.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from gateway.config.rule_kinds.base import RuleKindConfig


def _discover() -> dict[str, type[RuleKindConfig]]:
    found: dict[str, type[RuleKindConfig]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, RuleKindConfig)
                and value is not RuleKindConfig
                and value.__module__ == module.__name__
            ):
                found[_kind_of(value)] = value
    return found


def _kind_of(model: type[RuleKindConfig]) -> str:
    field = model.model_fields.get("kind")
    values: tuple[object, ...] = typing.get_args(field.annotation) if field else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise TypeError(f"{model.__qualname__} needs a field kind: Literal['its_kind']")
    return values[0]


RULE_KIND_MODELS: dict[str, type[RuleKindConfig]] = _discover()
RULE_KINDS: frozenset[str] = frozenset(RULE_KIND_MODELS)

if TYPE_CHECKING:
    RuleConfig = RuleKindConfig
else:
    _union: Any = Union[tuple(RULE_KIND_MODELS.values())]  # noqa: UP007 - built at run time
    RuleConfig = Annotated[_union, Field(discriminator="kind")]

__all__ = ["RULE_KINDS", "RULE_KIND_MODELS", "RuleConfig", "RuleKindConfig"]
