"""The `[[imap]]` config section: one entry per watched mailbox folder.

Kept apart from gateway/config/load.py so the IMAP watcher's many knobs do not crowd the
core settings; `GatewayConfig.imap` is a tuple of these models.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from gateway.timefmt import format_duration, parse_duration

# RFC 2177: servers may drop an IDLE client after 30 minutes of silence, so clients
# must re-issue IDLE at least every 29 minutes.
IDLE_LIMIT = timedelta(minutes=29)
# Without `unhealthy_after`: this, or three check periods if that is longer.
DEFAULT_UNHEALTHY_AFTER = timedelta(minutes=5)


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


_Duration = Annotated[timedelta, BeforeValidator(_duration)]


class ImapMailboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=100)
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    ca_file: str = ""
    username: str
    password: str = ""
    password_file: str = ""
    oauth2_token_file: str = ""
    folder: str = "INBOX"
    processed_folder: str | None = None
    quarantine_folder: str | None = None
    mark_seen: bool = True
    read_only: bool = False
    initial_scan: Literal["all", "unseen", "none"] = "unseen"
    mode: Literal["auto", "idle", "poll"] = "auto"
    poll_interval: _Duration = Field(default=timedelta(seconds=60), gt=timedelta(0))
    idle_timeout: _Duration = Field(default=timedelta(minutes=25), gt=timedelta(0))
    # Also the longest a missed IDLE notification can delay mail: each check ends with
    # a search for new UIDs (a restarted Dovecot was seen to send none).
    noop_interval: _Duration = Field(default=timedelta(minutes=1), gt=timedelta(0))
    timeout: _Duration = Field(default=timedelta(seconds=30), gt=timedelta(0))
    reconnect_initial: _Duration = Field(default=timedelta(seconds=1), gt=timedelta(0))
    reconnect_max: _Duration = Field(default=timedelta(minutes=5), gt=timedelta(0))
    fetch_batch: int = Field(default=50, ge=1, le=1000)
    exit_on_auth_failure: bool = False
    # /healthz calls the mailbox unhealthy after this many refused logins in a row, or
    # when no sync has succeeded for `unhealthy_after` (unset: see health_bound).
    unhealthy_after_failed_logins: int = Field(default=3, ge=1)
    unhealthy_after: _Duration | None = Field(default=None, gt=timedelta(0))

    @model_validator(mode="after")
    def _checks(self) -> ImapMailboxConfig:
        if self.idle_timeout >= IDLE_LIMIT:
            raise ValueError("idle_timeout must be under 29m (RFC 2177)")
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("reconnect_max must not be shorter than reconnect_initial")
        secrets = [
            k for k in ("password", "password_file", "oauth2_token_file") if getattr(self, k)
        ]
        if len(secrets) != 1:
            raise ValueError(
                "set exactly one of password, password_file or oauth2_token_file"
                + (f" (got {', '.join(secrets)})" if secrets else "")
            )
        for key in ("processed_folder", "quarantine_folder"):
            if getattr(self, key) == self.folder:
                raise ValueError(f"{key} must differ from folder {self.folder!r}")
        if self.unhealthy_after is not None and self.unhealthy_after <= self.check_period:
            # A healthy watcher syncs once per check period; a shorter bound would flap.
            raise ValueError(
                f"unhealthy_after must be longer than {format_duration(self.check_period)}, "
                "the longest a healthy watcher goes between two syncs"
            )
        return self

    @property
    def check_period(self) -> timedelta:
        """The longest a healthy watcher waits between two syncs of the folder."""
        if self.mode == "poll":
            return self.poll_interval
        # "idle" and "auto" poll when the server lacks IDLE, so either period may apply.
        return max(min(self.idle_timeout, self.noop_interval), self.poll_interval)

    @property
    def health_bound(self) -> timedelta:
        """How long without a successful sync before /healthz says so."""
        if self.unhealthy_after is not None:
            return self.unhealthy_after
        return max(DEFAULT_UNHEALTHY_AFTER, 3 * self.check_period)

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 993 if self.security == "tls" else 143

    @property
    def source(self) -> str:
        """The `source` recorded on every inbound item read from this mailbox."""
        return f"imap:{self.name}"

    def describe(self) -> str:
        """How log lines name this mailbox: enough to find it without the config."""
        return f"imap {self.name} ({self.username}@{self.host}:{self.effective_port} {self.folder})"

    def secret(self) -> str:
        """The password or OAuth2 token, read now: token files are refreshed externally."""
        path = self.password_file or self.oauth2_token_file
        if path:
            return Path(path).read_text(encoding="utf-8").strip()
        return self.password


def _unique_names(mailboxes: tuple[ImapMailboxConfig, ...]) -> tuple[ImapMailboxConfig, ...]:
    names = [m.name for m in mailboxes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"imap names must be unique, repeated: {', '.join(repeated)}")
    return mailboxes


ImapMailboxes = Annotated[tuple[ImapMailboxConfig, ...], AfterValidator(_unique_names)]
