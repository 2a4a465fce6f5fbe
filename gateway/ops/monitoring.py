"""/healthz and /metrics for the running daemon, on a loopback HTTP port.

Metrics are read from the store at scrape time rather than counted in memory: the
store is the record, so the numbers survive restarts, agree with `cases list` and
`outbox list`, and are the same whichever of several daemons sharing a PostgreSQL
store is scraped. Every table queried has an index on the grouped column.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gateway.cases.sla import ACTIVE_STATES
from gateway.clock import Clock
from gateway.config import MonitoringConfig
from gateway.leads.command_log import refused_metric
from store.db import Store
from store.models import Case, CaseEvent, InboundItem, OutboxMail

log = logging.getLogger("gateway.monitoring")

# True/False, or (healthy, why not) from a part that can say why (an IMAP watcher).
Probe = Callable[[], bool | tuple[bool, str]]
PREFIX = "escalation_gateway"


def _slug(text: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in text.lower()).split()) or "other"


def suppression_reason(data: Mapping[str, Any], detail: str) -> str:
    """A small, fixed set of label values (a free-text reason would explode cardinality)."""
    reason = data.get("reason")
    if isinstance(reason, str) and reason:
        return _slug(reason)
    if "no sender address" in detail:
        return "no_sender_address"
    return "automatic_mail"


def oldest_undelivered_age(session: Session, now: datetime) -> float | None:
    oldest = session.scalar(
        select(func.min(OutboxMail.created_at)).where(OutboxMail.state == "pending")
    )
    if oldest is None:
        return None
    if oldest.tzinfo is None:  # SQLite aggregate results bypass the column type
        oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=now.tzinfo)
    return max(0.0, (now - oldest).total_seconds())


def dead_by_cause(session: Session) -> dict[str, int]:
    counts = {"refused": 0, "attempts": 0}
    for cause, count in session.execute(
        select(OutboxMail.dead_cause, func.count())
        .where(OutboxMail.state == "dead")
        .group_by(OutboxMail.dead_cause)
    ):
        # Before causes were recorded, running out of attempts was the only way to die.
        counts[cause or "attempts"] = counts.get(cause or "attempts", 0) + int(count)
    return counts


def last_dead_mail(session: Session) -> dict[str, Any] | None:
    row = session.execute(
        select(OutboxMail.id, OutboxMail.kind, OutboxMail.dead_cause, OutboxMail.last_error)
        .where(OutboxMail.state == "dead")
        .order_by(OutboxMail.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {"id": row[0], "kind": row[1], "cause": row[2] or "attempts", "reason": row[3]}


def _as_aware(value: Any, now: datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=now.tzinfo)
    return datetime.fromisoformat(str(value)).replace(tzinfo=now.tzinfo)


class GatewayCollector(Collector):
    def __init__(self, store: Store, clock: Clock, timers_running: Probe | None) -> None:
        self.store = store
        self.clock = clock
        self.timers_running = timers_running

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        with self.store.session() as session:
            yield from self._inbound(session)
            yield from self._suppressed(session)
            yield from self._outbox(session, now)
            yield from self._cases(session, now)
            yield refused_metric(session, PREFIX)

    def _inbound(self, session: Session) -> Iterator[Metric]:
        mails = CounterMetricFamily(
            f"{PREFIX}_mails_received", "Inbound mails stored, by source.", labels=["source"]
        )
        for source, count in session.execute(
            select(InboundItem.source, func.count()).group_by(InboundItem.source)
        ):
            # IMAP sources are "imap:NAME"; keep the mailbox name, it is admin-chosen.
            mails.add_metric([source], count)
        yield mails
        decisions = CounterMetricFamily(
            f"{PREFIX}_decisions", "Processed inbound mails, by decision.", labels=["kind"]
        )
        for decision, count in session.execute(
            select(InboundItem.decision, func.count())
            .where(InboundItem.decision.is_not(None))
            .group_by(InboundItem.decision)
        ):
            decisions.add_metric([str(decision)], count)
        yield decisions
        quarantined = session.scalar(select(func.count()).where(InboundItem.state == "quarantined"))
        yield GaugeMetricFamily(
            f"{PREFIX}_quarantined_mails", "Inbound mails in quarantine now.", value=quarantined
        )

    def _suppressed(self, session: Session) -> Iterator[Metric]:
        counts: dict[str, int] = {}
        suppress = session.scalar(select(func.count()).where(InboundItem.decision == "suppress"))
        if suppress:
            counts["automatic_mail"] = int(suppress)
        for data, detail in session.execute(
            select(CaseEvent.data, CaseEvent.detail).where(CaseEvent.kind == "reply_suppressed")
        ):
            reason = suppression_reason(data or {}, detail or "")
            counts[reason] = counts.get(reason, 0) + 1
        metric = CounterMetricFamily(
            f"{PREFIX}_auto_replies_suppressed",
            "Automatic replies not sent, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(counts.items()):
            metric.add_metric([reason], count)
        yield metric

    def _outbox(self, session: Session, now: datetime) -> Iterator[Metric]:
        by_state = GaugeMetricFamily(
            f"{PREFIX}_outbox_mails", "Outgoing mails, by state.", labels=["state"]
        )
        states = dict.fromkeys(("pending", "sent", "dead", "shadow"), 0)
        for state, count in session.execute(
            select(OutboxMail.state, func.count()).group_by(OutboxMail.state)
        ):
            states[state] = count
        for state, count in states.items():
            by_state.add_metric([state], count)
        yield by_state
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_depth", "Outgoing mails waiting to be sent.", value=states["pending"]
        )
        # Each attempt that did not end in "sent" failed; a sent mail's last one succeeded.
        attempts = session.scalar(select(func.coalesce(func.sum(OutboxMail.attempts), 0))) or 0
        failures = int(attempts) - states["sent"]
        yield CounterMetricFamily(
            f"{PREFIX}_outbox_delivery_failures",
            "Delivery attempts that failed.",
            value=max(0, failures),
        )
        dead = GaugeMetricFamily(
            f"{PREFIX}_outbox_dead_mails",
            "Outgoing mails given up on, by cause: refused (a permanent 5xx) or attempts.",
            labels=["cause"],
        )
        for cause, count in dead_by_cause(session).items():
            dead.add_metric([cause], count)
        yield dead
        age = oldest_undelivered_age(session, now)
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_oldest_undelivered_seconds",
            "Age of the oldest outgoing mail not yet sent (0 when none).",
            value=age or 0.0,
        )

    def _cases(self, session: Session, now: datetime) -> Iterator[Metric]:
        open_cases = GaugeMetricFamily(
            f"{PREFIX}_open_cases", "Cases the customer is waiting on, by level.", labels=["level"]
        )
        by_level = dict.fromkeys(range(1, 5), 0)
        for level, count in session.execute(
            select(Case.level, func.count())
            .where(Case.state.in_(sorted(ACTIVE_STATES)))
            .group_by(Case.level)
        ):
            by_level[int(level)] = count
        for level, count in by_level.items():
            open_cases.add_metric([str(level)], count)
        yield open_cases
        if self.timers_running is None:
            return
        # How far behind the timer tick is: the oldest timer that is due and not yet run.
        oldest_due = session.scalar(
            select(func.min(Case.next_timer_at)).where(Case.next_timer_at <= now)
        )
        lag = (now - _as_aware(oldest_due, now)).total_seconds() if oldest_due else 0.0
        yield GaugeMetricFamily(
            f"{PREFIX}_timer_lag_seconds",
            "How long the most overdue case timer has been waiting.",
            value=max(0.0, lag),
        )


def health(
    store: Store, clock: Clock, probes: Mapping[str, Probe], config: MonitoringConfig
) -> dict[str, Any]:
    problems: list[str] = []
    age: float | None = None
    dead: dict[str, int] = {}
    last_dead: dict[str, Any] | None = None
    try:
        with store.session() as session:
            session.execute(text("SELECT 1"))
            age = oldest_undelivered_age(session, clock.now())
            dead = dead_by_cause(session)
            last_dead = last_dead_mail(session) if sum(dead.values()) else None
        store_ok = True
    except Exception as exc:
        store_ok = False
        problems.append(f"store unreachable: {type(exc).__name__}")
    components: dict[str, bool] = {}
    for name, probe in probes.items():
        outcome = probe()
        alive, why = outcome if isinstance(outcome, tuple) else (outcome, "")
        components[name] = bool(alive)
        if not alive:
            problems.append(f"{name} {why or 'is not running'}")
    limit = config.max_outbox_age.total_seconds()
    if age is not None and age > limit:
        problems.append(f"oldest undelivered mail is {age:.0f}s old (limit {limit:.0f}s)")
    # Dead mail is reported, not held against health: one hostile mail the smarthost
    # refuses must not get a healthy daemon restarted by its supervisor.
    return {
        "healthy": not problems,
        "store_reachable": store_ok,
        "components": components,
        "outbox_oldest_undelivered_seconds": age,
        "outbox_dead_mails": dead,
        "outbox_last_dead_mail": last_dead,
        "problems": problems,
    }


class MonitoringServer:
    def __init__(
        self,
        config: MonitoringConfig,
        store: Store,
        clock: Clock,
        probes: Mapping[str, Probe],
        timers_running: Probe | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.probes = dict(probes)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(GatewayCollector(store, clock, timers_running))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Bind and serve; OSError if the port cannot be had (`run` then stops, one line)."""
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer((self.config.host, self.config.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="monitoring", daemon=True
        )
        self._thread.start()
        log.info("monitoring on http://%s:%s/healthz and /metrics", self.config.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def health(self) -> dict[str, Any]:
        return health(self.store, self.clock, self.probes, self.config)

    def metrics(self) -> bytes:
        return generate_latest(self.registry)


def _handler_for(server: MonitoringServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                report = server.health()
                self._send(
                    200 if report["healthy"] else 503,
                    "application/json",
                    json.dumps(report).encode(),
                )
            elif path == "/metrics":
                try:
                    body = server.metrics()
                except Exception as exc:
                    log.exception("metrics scrape failed")
                    self._send(503, "text/plain", f"store unavailable: {exc}\n".encode())
                    return
                self._send(200, CONTENT_TYPE_LATEST, body)
            else:
                self._send(404, "text/plain", b"try /healthz or /metrics\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Scrapes every 15s would drown the gateway's own log lines.
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
