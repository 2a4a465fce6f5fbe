"""The whole config: every section, and the checks that span sections."""

from __future__ import annotations

from pydantic import Field, model_validator

from gateway.business_calendar import BusinessCalendar
from gateway.config.defaults import default_levels, default_rules
from gateway.config.imap import ImapMailboxes
from gateway.config.rule_kinds import RuleConfig
from gateway.config.sections import (
    AccountConfig,
    AutoReplyConfig,
    CalendarConfig,
    ConfigModel,
    IngestConfig,
    LeadsConfig,
    LevelConfig,
    LmtpListenerConfig,
    LoggingConfig,
    MonitoringConfig,
    OutboundConfig,
    RetentionConfig,
    SmtpListenerConfig,
    StoreConfig,
    TimersConfig,
    TimeZoneName,
    WorkerConfig,
)


class GatewayConfig(ConfigModel):
    timezone: TimeZoneName = "UTC"
    case_key_prefix: str = Field(default="ESC", pattern=r"^[A-Z][A-Z0-9]{1,9}$")
    template_dir: str = ""
    store: StoreConfig = StoreConfig()
    smtp: SmtpListenerConfig = SmtpListenerConfig()
    lmtp: LmtpListenerConfig = LmtpListenerConfig()
    ingest: IngestConfig = IngestConfig()
    retention: RetentionConfig = RetentionConfig()
    outbound: OutboundConfig = OutboundConfig()
    auto_reply: AutoReplyConfig = AutoReplyConfig()
    worker: WorkerConfig = WorkerConfig()
    calendars: dict[str, CalendarConfig] = Field(
        default_factory=lambda: {"business": CalendarConfig()}
    )
    levels: tuple[LevelConfig, ...] = Field(default_factory=default_levels)
    accounts: tuple[AccountConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = Field(default_factory=default_rules)
    timers: TimersConfig = TimersConfig()
    imap: ImapMailboxes = ()
    leads: LeadsConfig = LeadsConfig()
    # Decide and record everything, send nothing (outgoing mail is kept as "shadow").
    shadow: bool = False
    monitoring: MonitoringConfig = MonitoringConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> GatewayConfig:
        numbers = sorted(level.number for level in self.levels)
        if numbers != [1, 2, 3, 4]:
            raise ValueError(f"levels must define numbers 1, 2, 3 and 4 once each, got {numbers}")
        for level in self.levels:
            if level.calendar != "24x7" and level.calendar not in self.calendars:
                raise ValueError(
                    f"level {level.number} uses calendar {level.calendar!r}, "
                    f"which is not defined under [calendars]"
                )
        names = [rule.name for rule in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique, repeated: {', '.join(duplicates)}")
        for name, calendar in self.calendars.items():
            try:
                calendar.build()
            except (ValueError, KeyError) as exc:
                raise ValueError(f"calendar {name!r}: {exc}") from None
        if self.worker.processes > 1 and self.store.url.startswith("sqlite"):
            # SQLite has one writer at a time, and a worker writes for nearly all of
            # its transaction: a second process would only wait for the first.
            raise ValueError(
                f"worker.processes = {self.worker.processes} needs a PostgreSQL store; "
                "with SQLite use 0 or 1"
            )
        return self

    def level(self, number: int) -> LevelConfig:
        for level in self.levels:
            if level.number == number:
                return level
        raise KeyError(number)

    def calendar_for(self, level_number: int) -> BusinessCalendar:
        name = self.level(level_number).calendar
        if name == "24x7":
            return BusinessCalendar.twenty_four_seven(self.timezone)
        return self.calendars[name].build()

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset(
            {self.outbound.from_address.lower(), *self.auto_reply.own_addresses}
            | set(self.smtp.accept_recipients)
        )
