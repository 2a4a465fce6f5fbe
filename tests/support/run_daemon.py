"""`python -m gateway --config FILE run` as a real process: started, SIGKILLed, restarted.

The crash tests need the daemon exactly as an operator runs it, in its own process,
so that SIGKILL leaves what a real crash leaves (open transactions, leases, a lost
250). The config is written once; every start appends to one log file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.smtp_sink import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


class RunDaemon:
    def __init__(
        self,
        folder: Path,
        name: str,
        store_url: str,
        smarthost_port: int,
        *,
        outbound: str = "",
        more: str = "",
    ) -> None:
        """`outbound` adds keys to [outbound]; `more` adds whole tables."""
        self.name = name
        self.port = free_port()
        self.config = folder / f"{name}.toml"
        self.log = folder / f"{name}.log"
        self.config.write_text(
            f'[store]\nurl = "{store_url}"\n'
            f'[smtp]\nport = {self.port}\naccept_recipients = ["support@example.com"]\n'
            f'[outbound]\nmode = "smtp"\nhost = "127.0.0.1"\nport = {smarthost_port}\n'
            f"{outbound}"
            "[monitoring]\nenabled = false\n"
            f"{more}",
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, env: dict[str, str] | None = None) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(self.config), "run"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                stdout=log,
                stderr=log,
            )
        self.starts += 1
        wait_until(self._listening, what=f"{self.name} to listen", timeout=30)

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def tail(self, chars: int | None = 3000) -> str:
        text = self.log.read_text(errors="replace")
        return text if chars is None else text[-chars:]
