"""What every rule kind's config has: a name, a description, a switch and a level."""

from __future__ import annotations

from pydantic import Field

from gateway.config.sections import ConfigModel


class RuleKindConfig(ConfigModel):
    """Subclass this in a module of this package, with ``kind: Literal["your_kind"]``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    enabled: bool = True
    level: int = Field(default=2, ge=1, le=4)
