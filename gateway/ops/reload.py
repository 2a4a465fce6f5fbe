"""Safe hot reload: a new config is validated first and swapped in between worker transactions.

Triggers are SIGHUP and a change of the config file's mtime or size (checked at most
once a second by the worker thread). A new config that fails validation is rejected
with the exact error line and the daemon keeps running on the old one: a typo during
an edit must never stop mail handling. The swap happens in the worker thread before
it claims the next item, so no item is ever half handled by two configs, and every
processed item records the version that decided it. With `[worker] processes = N` the
supervising thread does the check, and the worker processes are replaced as a
generation: each old one finishes its batch and exits, new ones start on the new
config.

Some keys are bound at start (listener socket, store, IMAP mailboxes, monitoring
port, log format); a change to those is logged as needing a restart and otherwise
ignored until then (so is `[worker]`, the number of worker processes).
"""

from __future__ import annotations

import logging
import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from gateway.classify.classifier import Classifier
from gateway.config import EMBEDDED, ConfigError, GatewayConfig, parse_config
from gateway.config.version import version_of_bytes, version_of_config
from gateway.ops.config_paths import path_problems
from gateway.ops.template_check import TemplateProblem, check_override_names, render_samples
from gateway.outbound.render import Renderer

log = logging.getLogger("gateway.config")

RESTART_ONLY = ("store", "smtp", "imap", "monitoring", "logging", "worker")


@dataclass(frozen=True)
class ConfigSnapshot:
    config: GatewayConfig
    version: str
    source: str


def load_snapshot(path: Path) -> ConfigSnapshot:
    """Read the file once, so the version is the hash of exactly the bytes parsed."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None
    config = parse_config(data, source)
    validate(config, source)
    return ConfigSnapshot(config, version_of_bytes(raw), source)


def snapshot_of(config: GatewayConfig, source: str) -> ConfigSnapshot:
    """The snapshot for a config already loaded by the CLI."""
    if source != EMBEDDED:
        try:
            return ConfigSnapshot(config, version_of_bytes(Path(source).read_bytes()), source)
        except OSError:
            pass
    return ConfigSnapshot(config, version_of_config(config), source)


@dataclass(frozen=True)
class Validated:
    """What a full check covered, for check-config's summary line."""

    rules: int
    templates: int  # template files compiled, shipped and overridden
    renders: int  # sample renders (kinds x sample cases x variants)


def check_paths(config: GatewayConfig, source: str) -> None:
    """The first configured path that is missing or unreadable, as a ConfigError."""
    problems = path_problems(config)
    if problems:
        key, problem = problems[0]
        more = len(problems) - 1
        if more:
            problem += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(source, key, problem)


def validate(config: GatewayConfig, source: str) -> Validated:
    """What parse_config cannot see; run before `run` starts and before a reload.

    Paths on disk, templates that fail to compile, override files that override
    nothing, templates that fail to render for a sample case, rules that fail to build.
    """
    check_paths(config, source)
    try:
        # Every template, shipped and overridden.
        templates = Renderer(config.template_dir).check()
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            source, "template_dir", f"{exc.filename}:{exc.lineno}: {exc.message}"
        ) from None
    except Exception as exc:
        raise ConfigError(source, "template_dir", f"{type(exc).__name__}: {exc}") from None
    try:
        if config.template_dir:
            check_override_names(config.template_dir)
        renders = render_samples(config)
    except TemplateProblem as exc:
        raise ConfigError(source, "template_dir", str(exc)) from None
    try:
        rules = len(Classifier(config).rules)
    except Exception as exc:
        raise ConfigError(source, "rules", f"{type(exc).__name__}: {exc}") from None
    return Validated(rules=rules, templates=templates, renders=renders)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class ConfigReloader:
    def __init__(
        self,
        path: Path,
        current: ConfigSnapshot,
        *,
        min_interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.current = current
        self.min_interval = min_interval
        self._monotonic = monotonic
        self._stat = _stat(path)
        self._last_check = monotonic()
        # A plain flag, not an Event: it is set from a signal handler.
        self._requested = False
        self.rejected = 0
        self.last_error: str | None = None

    def request(self) -> None:
        """SIGHUP: reload at the next gap between messages, even if the file looks unchanged."""
        self._requested = True

    def poll(self) -> ConfigSnapshot | None:
        """A new, valid snapshot to swap in, or None to keep the current one."""
        requested = self._requested
        now = self._monotonic()
        if not requested and now - self._last_check < self.min_interval:
            return None
        self._last_check = now
        stat = _stat(self.path)
        if not requested and stat == self._stat:
            return None
        self._requested = False
        self._stat = stat
        try:
            snapshot = load_snapshot(self.path)
        except ConfigError as exc:
            self.rejected += 1
            self.last_error = f"config error: {exc}"
            log.error(
                "config reload rejected, still running version %s: %s",
                self.current.version,
                self.last_error,
            )
            return None
        self.last_error = None
        if snapshot.version == self.current.version:
            log.info("config %s unchanged (version %s)", self.path, snapshot.version)
            return None
        old = self.current
        changed = [
            key for key in RESTART_ONLY if getattr(old.config, key) != getattr(snapshot.config, key)
        ]
        if changed:
            log.warning(
                "config keys %s changed; they take effect only after a restart",
                ", ".join(changed),
            )
        self.current = snapshot
        log.info("config reloaded: version %s -> %s", old.version, snapshot.version)
        return snapshot
