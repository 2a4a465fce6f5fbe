"""Finding, reading and validating the config file, with errors an admin can act on."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.config.model import GatewayConfig
from gateway.config.rule_kinds import RULE_KINDS

CONFIG_ENV_VAR = "ESCALATION_GATEWAY_CONFIG"
DEFAULT_CONFIG_FILENAME = "escalation-gateway.toml"
EMBEDDED = "<embedded defaults>"


class ConfigError(Exception):
    """A config problem, phrased as ``file: key: problem`` for the admin."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


def _location(loc: tuple[int | str, ...], data: Any) -> str:
    """Turn pydantic's location into the key path an admin sees in the TOML file."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            # A rule or level is easier to find by its name or number than by index.
            label = str(item)
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict):
                entry = node[item]
                if "name" in entry and isinstance(entry["name"], str):
                    label = f"{item} ({entry['name']!r})"
                elif "number" in entry:
                    label = f"{item} (level {entry['number']})"
            parts[-1:] = [f"{parts[-1]}[{label}]"] if parts else [f"[{label}]"]
            node = node[item] if isinstance(node, list) and item < len(node) else None
            continue
        if not isinstance(item, str) or item in RULE_KINDS:
            # Discriminated unions add the tag to the location; the admin never wrote it.
            continue
        parts.append(item)
        node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def parse_config(data: dict[str, Any], source: str) -> GatewayConfig:
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _location(tuple(first["loc"]), data)
        problem = first["msg"].removeprefix("Value error, ")
        more = len(exc.errors()) - 1
        if more:
            problem += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(source, key, problem) from None


def load_config_file(path: Path) -> GatewayConfig:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read file: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None
    return parse_config(data, source)


def locate_config(explicit: str | None) -> Path | None:
    """--config, then the environment variable, then ./escalation-gateway.toml."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env)
    local = Path(DEFAULT_CONFIG_FILENAME)
    return local if local.exists() else None


def load_config(explicit: str | None = None) -> tuple[GatewayConfig, str]:
    """Return the config and a label saying where it came from."""
    path = locate_config(explicit)
    if path is None:
        return GatewayConfig(), EMBEDDED
    return load_config_file(path), str(path)
