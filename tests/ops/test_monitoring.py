"""/healthz and /metrics scraped over real HTTP from a daemon fed by the real listener."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.clock import FakeClock
from gateway.daemon import Daemon
from store.db import Store
from tests.conftest import make_config
from tests.support.mails import build_mail, send
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def daemon(store: Store, smtp_sink: SmtpSink, clock: FakeClock) -> Iterator[Daemon]:
    config = make_config(
        store, smtp_sink, monitoring={"enabled": True, "port": 0, "max_outbox_age": "10m"}
    )
    gateway = Daemon(config, store, clock)
    gateway.start()
    yield gateway
    gateway.stop()


def base(daemon: Daemon) -> str:
    assert daemon.monitoring is not None
    return f"http://127.0.0.1:{daemon.monitoring.port}"


def test_metrics_and_health_over_http(daemon: Daemon, smtp_sink: SmtpSink) -> None:
    port = daemon.config.smtp.port
    send(port, build_mail(subject="URGENT: checkout down"))
    send(port, build_mail(subject="How do I add a user?", body="Hi\n"))
    send(
        port,
        build_mail(
            subject="Out of office", body="Away.\n", headers={"Auto-Submitted": "auto-replied"}
        ),
    )
    smtp_sink.wait_for(2)

    def all_done() -> bool:
        found = samples(get(base(daemon) + "/metrics")[1])
        return sum(v for (n, _), v in found.items() if n.endswith("decisions_total")) == 3

    wait_until(all_done, what="three decisions")
    status, body, content_type = get(base(daemon) + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    found = samples(body)

    def value(name: str, **labels: str) -> float:
        return found[(f"escalation_gateway_{name}", tuple(sorted(labels.items())))]

    assert value("mails_received_total", source="smtp") == 3
    assert value("decisions_total", kind="open") == 1
    assert value("decisions_total", kind="ignore") == 1
    assert value("decisions_total", kind="suppress") == 1
    assert value("auto_replies_suppressed_total", reason="automatic_mail") == 1
    assert value("open_cases", level="4") == 1 and value("open_cases", level="1") == 0
    wait_until(lambda: samples(get(base(daemon) + "/metrics")[1])[
        ("escalation_gateway_outbox_depth", ())] == 0, what="outbox drained")  # fmt: skip
    found = samples(get(base(daemon) + "/metrics")[1])
    assert value("outbox_mails", state="sent") == 2
    assert value("outbox_delivery_failures_total") == 0
    assert value("timer_lag_seconds") == 0

    status, body, content_type = get(base(daemon) + "/healthz")
    report: dict[str, Any] = json.loads(body)
    assert status == 200 and content_type == "application/json", report
    assert report["healthy"] is True and report["store_reachable"] is True
    assert report["components"] == {
        "smtp_listener": True,
        "worker": True,
        "outbox": True,
        "timers": True,
    }
    assert report["outbox_oldest_undelivered_seconds"] is None
    assert get(base(daemon) + "/nothing")[0] == 404


def test_health_turns_503_on_stuck_outbox_and_dead_listener(
    daemon: Daemon, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    smtp_sink.refuse_with = "451 try later"
    send(daemon.config.smtp.port, build_mail(subject="URGENT: checkout down"))

    def failures() -> float:
        found = samples(get(base(daemon) + "/metrics")[1])
        return found[("escalation_gateway_outbox_delivery_failures_total", ())]

    wait_until(lambda: failures() >= 2, what="failed deliveries")  # owner note + ack
    assert get(base(daemon) + "/healthz")[0] == 200  # young enough still
    clock.advance(timedelta(minutes=11))
    status, body, _ = get(base(daemon) + "/healthz")
    report = json.loads(body)
    assert status == 503
    assert report["outbox_oldest_undelivered_seconds"] >= 660
    assert any("oldest undelivered mail" in p for p in report["problems"])

    assert daemon.listener is not None
    daemon.listener.stop()
    report = json.loads(get(base(daemon) + "/healthz")[1])
    assert report["components"]["smtp_listener"] is False
    assert "smtp_listener is not running" in report["problems"]
    daemon.listener = None  # already stopped; the fixture must not stop it twice


def test_json_log_lines(tmp_path: Path) -> None:
    (tmp_path / "escalation-gateway.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/gw.db"\n[outbound]\nmaildir = "{tmp_path}/out"\n'
        '[logging]\nformat = "json"\n'
    )

    def ingest(*flags: str) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-m", "gateway", *flags, "ingest", "-"],
            cwd=tmp_path,
            input=build_mail(subject="URGENT: logs"),
            capture_output=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert result.returncode == 0, result.stderr.decode()
        return result.stderr.decode().splitlines()

    lines = ingest()
    records = [json.loads(line) for line in lines]
    decision = next(r for r in records if r["logger"] == "gateway.worker")
    assert decision["level"] == "INFO" and "decision=open level=4" in decision["message"]
    assert set(decision) >= {"time", "level", "logger", "message", "thread"}
    text_lines = ingest("--log-format", "text")
    assert any(" INFO gateway.worker: item=" in line for line in text_lines)
