"""`run` that cannot start says so in one line with exit 2, and leaves nothing behind;
one daemon per SQLite file is enforced by a lock, several may share PostgreSQL.

Real `python -m gateway run` processes, real sockets, real SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.clock import FakeClock
from gateway.daemon import Daemon
from gateway.ops.daemon_lock import DaemonLock, lock_path_for
from gateway.ops.startup import StartupError
from store.db import Store
from tests.conftest import make_config
from tests.support.smtp_sink import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


class RunProcess:
    """A `run` daemon in its own process; its stderr lines are collected as they come."""

    def __init__(self, config: Path, cwd: Path) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "run"],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_running(self) -> None:
        wait_until(
            lambda: (
                any(line.endswith("gateway running") for line in self.lines)
                or self.proc.poll() is not None
            ),
            what="`run` to start",
            timeout=60,
        )
        assert self.proc.poll() is None, "\n".join(self.lines)

    def exit_code(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.exit_code()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


@pytest.fixture
def processes() -> Iterator[list[RunProcess]]:
    started: list[RunProcess] = []
    yield started
    for process in started:
        process.kill()


def write_config(folder: Path, store_url: str, *, smtp_port: int, monitoring_port: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gateway.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n'
        f"[smtp]\nport = {smtp_port}\n"
        f"[monitoring]\nport = {monitoring_port}\n"
        f'[outbound]\nmaildir = "{folder}/out"\n'
        # Two daemons of one PostgreSQL store must not share a wake socket either.
        f'[ingest]\nwake_socket = "{folder}/wake"\n'
    )
    return path


def taken_port() -> socket.socket:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


def error_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if " INFO " not in line]


@pytest.mark.parametrize("which", ["SMTP", "monitoring"])
def test_port_in_use_is_one_line_and_exit_2(
    store: Store, tmp_path: Path, which: str, processes: list[RunProcess]
) -> None:
    with taken_port() as holder:
        port = holder.getsockname()[1]
        ports = {"smtp_port": free_port(), "monitoring_port": free_port()}
        ports["smtp_port" if which == "SMTP" else "monitoring_port"] = port
        config = write_config(tmp_path, store.url, **ports)
        run = RunProcess(config, tmp_path)
        processes.append(run)
        assert run.exit_code() == 2, "\n".join(run.lines)
    assert not any("Traceback" in line for line in run.lines), "\n".join(run.lines)
    assert error_lines(run.lines) == [
        f"error: cannot listen for {which} on 127.0.0.1:{port}: Address already in use"
    ]
    # The monitoring port is bound first: with it taken, no mail port was ever opened.
    if which == "monitoring":
        assert not any("SMTP listener on" in line for line in run.lines)


def test_failed_start_leaves_nothing_running(store: Store, clock: FakeClock) -> None:
    monitoring_port = free_port()
    with taken_port() as holder:
        config = make_config(
            store,
            smtp={"port": holder.getsockname()[1]},
            monitoring={"enabled": True, "port": monitoring_port},
        )
        before = set(threading.enumerate())
        daemon = Daemon(config, store, clock)
        with pytest.raises(StartupError, match=r"^cannot listen for SMTP on 127\.0\.0\.1:"):
            daemon.start()
        wait_until(lambda: set(threading.enumerate()) <= before, what="threads to end")
        # The monitoring port it had bound is free again.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", monitoring_port))
        daemon.stop(timeout=5)  # harmless after a failed start
    # Nothing half-held: the same config starts once the port is free.
    again = Daemon(config, store, clock)
    again.start()
    try:
        assert again.listener is not None and again.listener.is_running()
    finally:
        again.stop(timeout=10)


def test_cli_failed_start_releases_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        with taken_port() as holder:
            port = holder.getsockname()[1]
            config = write_config(tmp_path, url, smtp_port=port, monitoring_port=free_port())
            before = set(threading.enumerate())
            assert main(["--config", str(config), "run"]) == 2
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: cannot listen for SMTP on 127.0.0.1:{port}: Address already in use"
    )
    wait_until(lambda: set(threading.enumerate()) <= before, what="threads to end")
    path = lock_path_for(url)
    assert path is not None and Path(path).exists()
    lock = DaemonLock(path)
    lock.acquire()  # the failed run let go of it
    lock.release()


def test_second_run_on_one_sqlite_file_is_refused_and_a_killed_one_blocks_nothing(
    tmp_path: Path, processes: list[RunProcess]
) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    # Different ports: what refuses the second daemon must be the lock, not a port.
    first_config = write_config(
        tmp_path / "a", url, smtp_port=free_port(), monitoring_port=free_port()
    )
    second_config = write_config(
        tmp_path / "b", url, smtp_port=free_port(), monitoring_port=free_port()
    )
    first = RunProcess(first_config, tmp_path)
    processes.append(first)
    first.wait_running()

    second = RunProcess(second_config, tmp_path)
    processes.append(second)
    assert second.exit_code() == 2, "\n".join(second.lines)
    assert second.lines == [
        f"error: another run already uses {tmp_path}/gw.db ({tmp_path}/gw.db.lock is held by "
        f"pid {first.proc.pid}); one daemon per SQLite file, use PostgreSQL to run several"
    ]
    assert first.proc.poll() is None, "the first daemon keeps running"

    # SIGKILL leaves no chance to clean up; the kernel drops the lock with the process.
    first.kill()
    third = RunProcess(second_config, tmp_path)
    processes.append(third)
    third.wait_running()
    assert third.terminate() == 0, "\n".join(third.lines)


def test_several_runs_share_one_postgresql_store(
    postgres_url: str, tmp_path: Path, processes: list[RunProcess]
) -> None:
    # By design: claims use FOR UPDATE SKIP LOCKED, so no lock is taken.
    assert lock_path_for(postgres_url) is None
    daemons = []
    for name in ("a", "b"):
        config = write_config(
            tmp_path / name, postgres_url, smtp_port=free_port(), monitoring_port=free_port()
        )
        daemon = RunProcess(config, tmp_path)
        processes.append(daemon)
        daemons.append(daemon)
    for daemon in daemons:
        daemon.wait_running()
    for daemon in daemons:
        assert daemon.terminate() == 0, "\n".join(daemon.lines)
