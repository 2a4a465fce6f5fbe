"""The gateway's command line run as a child process, the way an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.mails import send
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]

# Nothing of the caller's environment but a PATH: the command must not lean on it.
BARE_ENV = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}


def inherited_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _run(
    args: tuple[str, ...], *, cwd: Path, timeout: float, env: dict[str, str] | None, **options: Any
) -> subprocess.CompletedProcess[Any]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        env=inherited_env() if env is None else env,
        **options,
    )


def run_gateway(
    *args: str,
    cwd: Path,
    stdin: bytes | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """`python -m gateway ARGS` to its end; output as bytes, stdin given or inherited."""
    result: subprocess.CompletedProcess[bytes] = _run(
        args, cwd=cwd, timeout=timeout, env=env, input=stdin
    )
    return result


def run_gateway_text(
    *args: str, cwd: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS` to its end; output as text, stdin inherited."""
    result: subprocess.CompletedProcess[str] = _run(
        args, cwd=cwd, timeout=timeout, env=env, text=True
    )
    return result


def start_run(cwd: Path) -> subprocess.Popen[bytes]:
    """`python -m gateway run` in `cwd`, its config found there; stderr kept for the test."""
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run"],
        cwd=cwd,
        env=inherited_env(),
        stderr=subprocess.PIPE,
    )


def send_once_listening(port: int, raw: bytes) -> None:
    """Send `raw` by SMTP as soon as a starting daemon accepts it on `port` (30 s at most)."""

    def sent() -> bool:
        try:
            send(port, raw)
        except OSError:
            return False
        return True

    wait_until(sent, what="daemon to listen", timeout=30)
