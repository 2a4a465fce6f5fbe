"""Typed configuration, loaded from TOML and validated before anything starts.

pydantic does the validation because its errors carry the exact location of the bad
key (``levels.2.first_response``), which is what an admin needs to fix a file. Every
default lives on the models below, and ``config.example.toml`` documents each of them;
a test keeps the two in step.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.business_calendar import BusinessCalendar, parse_duration
from gateway.config.imap import ImapMailboxes

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


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Model):
    name: str
    email: str

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError(f"{value!r} is not an email address")
        return value.strip().lower()


class StoreConfig(_Model):
    url: str = "sqlite:///escalation-gateway.db"


class SmtpListenerConfig(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=2525, ge=0, le=65535)
    accept_recipients: tuple[str, ...] = ("support@example.com",)
    accept_domains: tuple[str, ...] = ()
    max_message_size: int = Field(default=25 * 1024 * 1024, gt=0)

    @field_validator("accept_recipients", "accept_domains")
    @classmethod
    def _lower(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in values)


class OutboundConfig(_Model):
    mode: Literal["maildir", "smtp"] = "maildir"
    maildir: str = "outgoing-mail"
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    username: str = ""
    password: str = ""
    password_file: str = ""
    timeout: Duration = timedelta(seconds=30)
    from_address: str = "support@example.com"
    from_name: str = "Support escalations"
    message_id_domain: str = ""
    max_attempts: int = Field(default=10, ge=1)
    retry_initial: Duration = timedelta(seconds=30)
    retry_max: Duration = timedelta(hours=1)

    @property
    def effective_message_id_domain(self) -> str:
        # A subdomain of our own: the loop guard treats mail whose Message-ID ends in
        # it as ours, and colleagues' clients may well use the bare company domain.
        return (
            self.message_id_domain or "escalation-gateway." + self.from_address.rpartition("@")[2]
        )

    def resolved_password(self) -> str:
        if self.password_file:
            return Path(self.password_file).read_text(encoding="utf-8").strip()
        return self.password


class WorkerConfig(_Model):
    """Where mail is parsed, classified and acted on: a thread, or child processes."""

    processes: int = Field(default=0, ge=0, le=64)
    batch_size: int = Field(default=20, ge=1, le=1000)


class AutoReplyConfig(_Model):
    max_per_address_per_hour: int = Field(default=5, ge=0)
    own_addresses: tuple[str, ...] = ()


_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CalendarConfig(_Model):
    timezone: str = "UTC"
    working_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    hours: str = "09:00-17:00"
    holidays: tuple[date, ...] = ()
    always_open: bool = False

    @field_validator("working_days")
    @classmethod
    def _days(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for v in values:
            if v.lower()[:3] not in _DAY_NAMES:
                raise ValueError(f"unknown day {v!r}; use mon, tue, wed, thu, fri, sat, sun")
        return tuple(v.lower()[:3] for v in values)

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        if not re.fullmatch(r"\d{1,2}:\d{2}-\d{1,2}:\d{2}", value.strip()):
            raise ValueError(f"{value!r} is not a range like 09:00-17:00")
        return value.strip()

    def build(self) -> BusinessCalendar:
        start_text, end_text = self.hours.split("-")
        return BusinessCalendar(
            timezone=self.timezone,
            working_days=frozenset(_DAY_NAMES.index(d) for d in self.working_days),
            day_start=time.fromisoformat(start_text.zfill(5)),
            day_end=time.fromisoformat(end_text.zfill(5)),
            holidays=frozenset(self.holidays),
            always_open=self.always_open,
        )


class LevelConfig(_Model):
    number: int = Field(ge=1, le=4)
    name: str
    first_response: Duration
    status_interval: Duration
    resolution: Duration
    monitoring: Duration = timedelta(hours=48)
    calendar: str = "24x7"
    owners: tuple[Person, ...] = Field(min_length=1)
    managers: tuple[Person, ...] = ()
    assignment: Literal["round_robin", "account_lead"] = "round_robin"
    reminder_at: float = Field(default=0.75, gt=0, lt=1)


class AccountConfig(_Model):
    name: str
    domains: tuple[str, ...] = Field(min_length=1)
    account_managers: tuple[Person, ...] = ()
    lead: Person | None = None

    @field_validator("domains")
    @classmethod
    def _lower(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in values)


class _RuleBase(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    enabled: bool = True
    level: int = Field(default=2, ge=1, le=4)


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


Regex = Annotated[str, BeforeValidator(lambda v: _check_regex(v) if isinstance(v, str) else v)]


class AccountManagerRule(_RuleBase):
    kind: Literal["account_manager"]


class SubjectPatternRule(_RuleBase):
    kind: Literal["subject_pattern"]
    pattern: Regex
    ignore_case: bool = False


class TemplateRule(_RuleBase):
    kind: Literal["template"]
    priority_levels: dict[str, int] = Field(
        default_factory=lambda: {"low": 1, "medium": 2, "high": 3, "critical": 4}
    )
    required_fields: tuple[str, ...] = (
        "priority",
        "customer",
        "ticket",
        "issue_summary",
        "customer_impact",
    )


class HeaderRule(_RuleBase):
    kind: Literal["header"]
    header: str
    pattern: Regex
    level_from_value: bool = False
    trusted_senders: tuple[str, ...] = ()

    @field_validator("trusted_senders")
    @classmethod
    def _lower(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in values)


class PhraseRule(_RuleBase):
    kind: Literal["phrase"]
    phrases: tuple[Regex, ...] = Field(min_length=1)


RuleConfig = Annotated[
    AccountManagerRule | SubjectPatternRule | TemplateRule | HeaderRule | PhraseRule,
    Field(discriminator="kind"),
]


class TimersConfig(_Model):
    """The escalation timeline: how often timers run and how the case clock behaves."""

    tick_interval: Duration = timedelta(seconds=5)
    batch_size: int = Field(default=200, ge=1)
    # A failing case is retried with doubling delays, so it never blocks the others.
    retry_initial: Duration = timedelta(minutes=1)
    retry_max: Duration = timedelta(hours=1)
    # How long a claimed case stays hidden from other daemons sharing the store.
    claim_lease: Duration = timedelta(minutes=5)
    level4_breach_repeat: Duration = timedelta(minutes=30)
    reopen_window: Duration = timedelta(days=7)
    skip_status_after_human_update: bool = True
    confirmation_phrases: tuple[Regex, ...] = (
        r"(?i)\bresolved\b",
        r"(?i)\ball good\b",
        r"(?i)\byou (can|may) close\b",
        r"(?i)\bplease close\b",
        r"(?i)\b(works|working) (fine|again|now)\b",
    )
    recurrence_phrases: tuple[Regex, ...] = (
        r"(?i)\b(problem|issue|error|it)('s| is) back\b",
        r"(?i)\b(happen(ed|ing|s)|broke(n)?|fail(ed|ing|s)) again\b",
        r"(?i)\bstill (not working|broken|failing|happening|down)\b",
        r"(?i)\b(not|isn'?t|hasn'?t been|wasn'?t) (fixed|resolved)\b",
        r"(?i)\bcame back\b",
    )


def _person(name: str, email: str) -> Person:
    return Person(name=name, email=email)


def _default_levels() -> tuple[LevelConfig, ...]:
    return (
        LevelConfig(
            number=1,
            name="Senior support agent",
            first_response=timedelta(hours=4),
            status_interval=timedelta(days=1),
            resolution=timedelta(days=3),
            calendar="business",
            owners=(_person("Senior Agent", "senior@example.com"),),
        ),
        LevelConfig(
            number=2,
            name="Team lead",
            first_response=timedelta(hours=1),
            status_interval=timedelta(hours=8),
            resolution=timedelta(days=2),
            calendar="business",
            owners=(_person("Team Lead", "lead@example.com"),),
            managers=(_person("Support Manager", "support-manager@example.com"),),
            assignment="account_lead",
        ),
        LevelConfig(
            number=3,
            name="Technical team",
            first_response=timedelta(hours=1),
            status_interval=timedelta(hours=4),
            resolution=timedelta(days=1),
            owners=(_person("On-call Engineer", "oncall@example.com"),),
            managers=(_person("Engineering Manager", "eng-manager@example.com"),),
        ),
        LevelConfig(
            number=4,
            name="Executive team",
            first_response=timedelta(minutes=30),
            status_interval=timedelta(hours=2),
            resolution=timedelta(hours=12),
            owners=(_person("Head of Support", "head-of-support@example.com"),),
            managers=(_person("Chief Operating Officer", "coo@example.com"),),
        ),
    )


def _default_rules() -> tuple[RuleConfig, ...]:
    return (
        AccountManagerRule(
            kind="account_manager",
            name="account-manager-copied",
            description="A customer copied their account manager on the thread.",
            level=2,
        ),
        SubjectPatternRule(
            kind="subject_pattern",
            name="urgent-subject",
            description="URGENT in the subject reaches the executive team.",
            pattern=r"\bURGENT\b",
            level=4,
        ),
        TemplateRule(
            kind="template",
            name="agent-escalation-template",
            description="An agent used the escalation template.",
            level=2,
        ),
        HeaderRule(
            kind="header",
            name="escalation-level-header",
            description="A trusted system set X-Escalation-Level.",
            header="X-Escalation-Level",
            pattern=r"^\s*[1-4]\s*$",
            level_from_value=True,
            trusted_senders=("example.com",),
        ),
        PhraseRule(
            kind="phrase",
            name="security-or-data-loss",
            description="Security breach or data loss reported.",
            level=3,
            phrases=(
                r"(?i)\bsecurity (breach|incident)\b",
                r"(?i)\b(data loss|lost (all )?(our |my )?data|data (is |was )?corrupt(ed|ion))\b",
                r"(?i)\b(hacked|compromised account)\b",
            ),
        ),
        PhraseRule(
            kind="phrase",
            name="outage",
            description="A system-wide outage reported.",
            level=3,
            phrases=(
                r"(?i)\b(outage|system(s)? (is |are )?down|service (is )?down)\b",
                r"(?i)\bnobody can (log ?in|access)\b",
            ),
        ),
        PhraseRule(
            kind="phrase",
            name="legal-or-media",
            description="Legal threat or media attention.",
            level=4,
            phrases=(
                r"(?i)\b(lawyer|attorney|legal action|lawsuit|sue you)\b",
                r"(?i)\b(press|journalist|media) (inquiry|enquiry|coverage)\b",
            ),
        ),
        PhraseRule(
            kind="phrase",
            name="asks-for-manager",
            description="The customer asks for a manager or supervisor.",
            level=2,
            phrases=(
                r"(?i)\b(speak|talk) (to|with) (a |your )?(manager|supervisor)\b",
                r"(?i)\bescalate (this|it)\b",
            ),
        ),
    )


class LeadsConfig(_Model):
    """Who may steer cases by email, and how a command reply must prove itself."""

    # People who may command any case, besides each case's owner and its level's
    # owners and managers and the account's named lead.
    admins: tuple[Person, ...] = ()
    # HMAC secret for per-case reply tokens. Empty: generated once, kept in the store.
    token_secret: str = ""
    token_secret_file: str = ""
    # Also demand dkim=pass or dmarc=pass in an Authentication-Results header written
    # by one of these servers (their authserv-id).
    require_authentication: bool = False
    trusted_authserv_ids: tuple[str, ...] = ()
    # Refusal mails to one sender (commands that failed authorization) per hour.
    max_refusals_per_hour: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _auth_needs_servers(self) -> LeadsConfig:
        if self.require_authentication and not self.trusted_authserv_ids:
            raise ValueError("require_authentication needs at least one trusted_authserv_ids entry")
        return self

    def resolved_secret(self) -> str:
        if self.token_secret_file:
            return Path(self.token_secret_file).read_text(encoding="utf-8").strip()
        return self.token_secret


class MonitoringConfig(_Model):
    """/healthz and /metrics for `run`; loopback only by default (no auth on them)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9125, ge=0, le=65535)
    # /healthz turns 503 when the oldest undelivered outbox mail is older than this.
    max_outbox_age: Duration = timedelta(minutes=30)


class LoggingConfig(_Model):
    format: Literal["text", "json"] = "text"


class GatewayConfig(_Model):
    timezone: str = "UTC"
    case_key_prefix: str = Field(default="ESC", pattern=r"^[A-Z][A-Z0-9]{1,9}$")
    template_dir: str = ""
    store: StoreConfig = StoreConfig()
    smtp: SmtpListenerConfig = SmtpListenerConfig()
    outbound: OutboundConfig = OutboundConfig()
    auto_reply: AutoReplyConfig = AutoReplyConfig()
    worker: WorkerConfig = WorkerConfig()
    calendars: dict[str, CalendarConfig] = Field(
        default_factory=lambda: {"business": CalendarConfig()}
    )
    levels: tuple[LevelConfig, ...] = Field(default_factory=_default_levels)
    accounts: tuple[AccountConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = Field(default_factory=_default_rules)
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
        if not isinstance(item, str) or item in {
            "account_manager",
            "subject_pattern",
            "template",
            "header",
            "phrase",
        }:
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
