"""The config file's sections, one model each; every default lives on these models.

config.example.toml documents each key, and a test keeps the two in step.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from gateway.business_calendar import BusinessCalendar
from gateway.timefmt import parse_duration


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def check_timezone(value: str) -> str:
    """An IANA zone name zoneinfo knows: a misspelt one would fail every mail's dates."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # Suggest by case-insensitive likeness ("utc" -> "UTC", "Europe/Berln").
        known = {name.lower(): name for name in available_timezones()}
        close = difflib.get_close_matches(value.strip().lower(), known, n=1)
        hint = f" (did you mean {known[close[0]]!r}?)" if close else ""
        raise ValueError(f"unknown time zone {value!r}{hint}") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(check_timezone)]


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(ConfigModel):
    name: str
    email: str

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError(f"{value!r} is not an email address")
        return value.strip().lower()


class StoreConfig(ConfigModel):
    url: str = "sqlite:///escalation-gateway.db"


class SmtpListenerConfig(ConfigModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=2525, ge=0, le=65535)
    accept_recipients: tuple[str, ...] = ("support@example.com",)
    accept_domains: tuple[str, ...] = ()
    max_message_size: int = Field(default=25 * 1024 * 1024, gt=0)
    # STARTTLS, offered when a certificate (PEM, with its chain) is configured.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    require_starttls: bool = False

    @field_validator("accept_recipients", "accept_domains")
    @classmethod
    def _lower(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in values)

    @model_validator(mode="after")
    def _tls_needs_certificate(self) -> SmtpListenerConfig:
        if self.require_starttls and not self.tls_cert_file:
            raise ValueError("require_starttls needs tls_cert_file (and tls_key_file)")
        if self.tls_key_file and not self.tls_cert_file:
            raise ValueError("tls_key_file is set but tls_cert_file is not")
        return self


class LmtpListenerConfig(ConfigModel):
    """An LMTP listener in `run`, for a mail server's LMTP delivery (off by default).

    Recipients and the size limit are [smtp]'s accept_recipients, accept_domains and
    max_message_size.
    """

    enabled: bool = False
    # A unix socket path (Postfix `lmtp:unix:PATH`); empty listens on host:port instead.
    socket: str = ""
    socket_mode: int = Field(default=0o660, ge=0, le=0o777)
    host: str = "127.0.0.1"
    port: int = Field(default=2424, ge=0, le=65535)


class IngestConfig(ConfigModel):
    """How `escalation-gateway ingest` (a pipe transport) reaches the running daemon."""

    # The daemon's wake-up socket; empty: the SQLite file's path plus "-wake".
    wake_socket: str = ""


class RetentionConfig(ConfigModel):
    """Raw mail of closed cases is removed this many days after closing (0: kept)."""

    closed_case_raw_mail_days: int = Field(default=0, ge=0)
    check_interval: Duration = timedelta(hours=1)


class OutboundConfig(ConfigModel):
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
    # Any count is safe: the backoff stops doubling at retry_max (gateway/outbound/failures.py).
    max_attempts: int = Field(default=10, ge=1)
    retry_initial: Duration = Field(default=timedelta(seconds=30), gt=timedelta(0))
    # Bounded so a next-attempt time always stays a date the store can hold.
    retry_max: Duration = Field(default=timedelta(hours=1), gt=timedelta(0), le=timedelta(days=7))
    # Where each sender journals the 250s it gets; empty: beside a SQLite file, else
    # systemd's StateDirectory, else the temp directory (gateway/outbound/sent_journal.py).
    sent_journal_dir: str = ""

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


class WorkerConfig(ConfigModel):
    """Where mail is parsed, classified and acted on: a thread, or child processes."""

    processes: int = Field(default=0, ge=0, le=64)
    batch_size: int = Field(default=20, ge=1, le=1000)


class AutoReplyConfig(ConfigModel):
    max_per_address_per_hour: int = Field(default=5, ge=0)
    own_addresses: tuple[str, ...] = ()


_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CalendarConfig(ConfigModel):
    timezone: TimeZoneName = "UTC"
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


class LevelConfig(ConfigModel):
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


class AccountConfig(ConfigModel):
    name: str
    domains: tuple[str, ...] = Field(min_length=1)
    account_managers: tuple[Person, ...] = ()
    lead: Person | None = None

    @field_validator("domains")
    @classmethod
    def _lower(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in values)


def check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


Regex = Annotated[str, BeforeValidator(lambda v: check_regex(v) if isinstance(v, str) else v)]


class TimersConfig(ConfigModel):
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
    # A status mail later than this after the time promised for it says it is late, and
    # the rhythm restarts from it (after downtime) instead of from the missed slot.
    status_late_after: Duration = Field(default=timedelta(minutes=10), gt=timedelta(0))
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


class LeadsConfig(ConfigModel):
    """Who may steer cases by email, and how a command reply must prove itself."""

    # People who may command any case, besides each case's owner and its level's
    # owners and managers and the account's named lead.
    admins: tuple[Person, ...] = ()
    # HMAC secret for the reply tokens, each bound to a case and one recipient
    # (gateway/outbound/tokens.py). Empty: generated once, kept in the store.
    token_secret: str = ""
    token_secret_file: str = ""
    # Also demand dmarc=pass, or a dkim=pass aligned with the From domain, in the
    # topmost Authentication-Results header with one of these authserv-ids (the
    # border MTA's; gateway/leads/sender_auth.py).
    require_authentication: bool = False
    trusted_authserv_ids: tuple[str, ...] = ()
    # Refusal mails per hour to one lead; nobody without a role on the case gets one.
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


class MonitoringConfig(ConfigModel):
    """/healthz and /metrics for `run`; loopback only by default (no auth on them)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9125, ge=0, le=65535)
    # /healthz turns 503 when the oldest undelivered outbox mail is older than this.
    max_outbox_age: Duration = timedelta(minutes=30)


class LoggingConfig(ConfigModel):
    format: Literal["text", "json"] = "text"
