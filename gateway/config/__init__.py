"""Typed configuration, loaded from TOML and validated before anything starts.

pydantic does the validation because its errors carry the exact location of the bad
key (``levels.2.first_response``), which is what an admin needs to fix a file.
``sections`` holds one model per section, ``rule_kinds`` one module per kind of
detection rule, ``defaults`` the embedded levels and rules, ``model`` the whole file
with its cross-section checks, and ``load`` finding and reading the file.
"""

from gateway.config.load import (
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_FILENAME,
    EMBEDDED,
    ConfigError,
    load_config,
    load_config_file,
    locate_config,
    parse_config,
)
from gateway.config.model import GatewayConfig
from gateway.config.rule_kinds import RULE_KINDS, RuleConfig, RuleKindConfig
from gateway.config.sections import (
    AccountConfig,
    AutoReplyConfig,
    CalendarConfig,
    Duration,
    LeadsConfig,
    LevelConfig,
    LoggingConfig,
    MonitoringConfig,
    OutboundConfig,
    Person,
    SmtpListenerConfig,
    StoreConfig,
    TimersConfig,
    WorkerConfig,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_FILENAME",
    "EMBEDDED",
    "RULE_KINDS",
    "AccountConfig",
    "AutoReplyConfig",
    "CalendarConfig",
    "ConfigError",
    "Duration",
    "GatewayConfig",
    "LeadsConfig",
    "LevelConfig",
    "LoggingConfig",
    "MonitoringConfig",
    "OutboundConfig",
    "Person",
    "RuleConfig",
    "RuleKindConfig",
    "SmtpListenerConfig",
    "StoreConfig",
    "TimersConfig",
    "WorkerConfig",
    "load_config",
    "load_config_file",
    "locate_config",
    "parse_config",
]
