"""The wake-up socket: delivery means a daemon listens, failure means none does."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from gateway.ingest.wake import WakeListener, sqlite_file, wake_daemon, wake_socket_path


def test_paths_follow_the_sqlite_file_unless_configured() -> None:
    assert sqlite_file("sqlite:///gw.db") == "gw.db"
    assert sqlite_file("sqlite:////var/lib/eg/gw.db") == "/var/lib/eg/gw.db"
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("postgresql://gw@db/gw") is None
    assert wake_socket_path("sqlite:////var/lib/eg/gw.db", "") == "/var/lib/eg/gw.db-wake"
    assert wake_socket_path("postgresql://gw@db/gw", "") is None
    assert wake_socket_path("postgresql://gw@db/gw", "/run/eg/wake") == "/run/eg/wake"


def test_a_listening_daemon_is_woken_and_a_stopped_one_is_not(tmp_path: Path) -> None:
    path = str(tmp_path / "wake")
    woken = threading.Event()
    listener = WakeListener(path, woken.set)
    assert wake_daemon(path) is False  # nothing there yet
    assert listener.start()
    try:
        assert wake_daemon(path) is True
        assert woken.wait(5)
        assert listener.is_alive()
    finally:
        listener.stop()
    assert wake_daemon(path) is False
    assert not Path(path).exists()


def test_a_socket_left_by_a_killed_daemon_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "wake")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(path)
    dead.close()  # the file stays, nobody reads it: as after kill -9
    assert wake_daemon(path) is False
    listener = WakeListener(path, lambda: None)
    assert listener.start()
    try:
        assert wake_daemon(path) is True
    finally:
        listener.stop()


def test_a_second_daemon_leaves_the_first_ones_socket_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "wake")
    first = WakeListener(path, lambda: None)
    assert first.start()
    try:
        assert WakeListener(path, lambda: None).start() is False
        assert wake_daemon(path) is True  # still the first one's
    finally:
        first.stop()


def test_a_file_that_is_not_a_socket_is_never_removed(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    path.write_bytes(b"precious")
    assert WakeListener(str(path), lambda: None).start() is False
    assert path.read_bytes() == b"precious"
