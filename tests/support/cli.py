"""The gateway's command line run as a child process, the way an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
