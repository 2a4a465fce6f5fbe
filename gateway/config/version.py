"""A short, stable name for "the config that decided": the sha256 of its bytes.

The file's bytes are hashed (not the parsed model) so an admin can check a version
with ``sha256sum escalation-gateway.toml``. Configs that never came from a file
(embedded defaults, tests) are named by the hash of their canonical JSON instead.
"""

from __future__ import annotations

import hashlib

from gateway.config import GatewayConfig

VERSION_LENGTH = 12


def version_of_bytes(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:VERSION_LENGTH]


def version_of_config(config: GatewayConfig) -> str:
    return version_of_bytes(config.model_dump_json().encode())
