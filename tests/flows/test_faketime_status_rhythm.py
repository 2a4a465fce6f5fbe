"""The daemon as it runs in production, through hours of time sped up with libfaketime.

An injected clock cannot reach a real `run` process, so this test starts the daemon
under `faketime` at 720x (one real second is twelve minutes) and keeps the outage
real too: the daemon is SIGKILLed after the acknowledgement and started again six
simulated hours later, past a status update that fell due while it was down. The
customer must get one catch-up mail that says the updates were delayed, and the next
a full interval after it, not a burst.
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from tests.support.mails import build_mail, send
from tests.support.smtp_sink import ReceivedMail, SmtpSink, free_port

SPEED = 720
STATUS_INTERVAL = timedelta(hours=4)

LEVELS = """
[[levels]]
number = {n}
name = "Level {n}"
first_response = "7d"
status_interval = "4h"
resolution = "30d"
calendar = "24x7"
owners = [{{ name = "Owner {n}", email = "owner{n}@example.com" }}]
"""


def _config(tmp_path: Path, smtp_port: int, sink_port: int) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "gateway.db"}"
[smtp]
port = {smtp_port}
[outbound]
mode = "smtp"
port = {sink_port}
retry_initial = "1s"
[monitoring]
enabled = false
[timers]
tick_interval = "1s"
"""
        + "".join(LEVELS.format(n=n) for n in (1, 2, 3, 4))
    )
    return path


def _libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    assert found, "libfaketime is missing: tests/install-system-deps.sh installs it"
    return found[0]


def _start(config: Path, fake_start: datetime) -> subprocess.Popen[bytes]:
    # Preloaded into the daemon itself (not through the `faketime` wrapper, which
    # stays the parent), so SIGKILL reaches the daemon.
    env = {
        **os.environ,
        "LD_PRELOAD": _libfaketime(),
        "FAKETIME": f"@{fake_start:%Y-%m-%d %H:%M:%S} x{SPEED}",
        "TZ": "UTC",
        # Monotonic time stays real: Python's timed waits run on it, and a faked
        # monotonic clock makes them never return.
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    log = (config.parent / f"daemon-{fake_start:%H%M}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(config), "run"],
        cwd=config.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"the daemon never listened on {port}")


def _sent_at(mail: ReceivedMail) -> datetime:
    return parsedate_to_datetime(str(mail.message["Date"]))


def _status_mails(sink: SmtpSink) -> list[ReceivedMail]:
    return [m for m in sink.to("alice@acme.example") if "Next update: by" in m.text]


def test_after_downtime_one_late_update_then_the_normal_rhythm(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    smtp_port = free_port()
    config = _config(tmp_path, smtp_port, smtp_sink.port)
    first = _start(config, datetime(2026, 11, 30, 14, 0))
    try:
        _wait_for_port(smtp_port)
        send(smtp_port, build_mail(subject="Our data was corrupted", body="Please help.\n"))
        acknowledgement, _notification = smtp_sink.wait_for(2, timeout=30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    opened = _sent_at(acknowledgement)
    assert _status_mails(smtp_sink) == []

    # Down for six simulated hours: the first update (opened + 4 h) fell due meanwhile.
    second = _start(config, (opened + timedelta(hours=6)).replace(tzinfo=None))
    try:
        deadline = time.monotonic() + 30
        while len(_status_mails(smtp_sink)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    status = _status_mails(smtp_sink)
    seen = [(str(_sent_at(m)), m.text.splitlines()[2:4]) for m in smtp_sink.mails]
    assert len(status) >= 2, f"{len(status)} status mails after the restart: {seen}"
    catch_up, following = status[0], status[1]
    assert "updates were delayed" in catch_up.text
    assert "updates were delayed" not in following.text
    gap = _sent_at(following) - _sent_at(catch_up)
    # One tick is 12 simulated minutes; the SMTP round trip adds a little.
    assert STATUS_INTERVAL - timedelta(minutes=5) <= gap <= STATUS_INTERVAL + timedelta(minutes=40)
