"""A private Postfix for one test, in front of the gateway as the README deploys it.

Everything the instance owns (main.cf and master.cf, queue, data, log) lives in one
folder, so it runs beside a system Postfix, or another test's, without sharing a
lock, a pid file or a queue. Its only network listener is smtpd on a free port of
127.0.0.1. The transport map sends the gateway's addresses to its LMTP listener;
everything else goes to a relay host, the test's smarthost sink.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.smtp_sink import free_port

# Distinct from the machine's name: Postfix refuses to deliver to a server that
# greets with its own myhostname ("loops back to myself"), and the aiosmtpd servers
# in the tests greet with the machine's name.
HOSTNAME = "mta.postfix-test.invalid"
MAIL_OWNER = "postfix"
TIMEOUT = 15.0

_DELIVERY = re.compile(
    r"\bto=<(?P<to>[^>]*)>.*?\brelay=(?P<relay>[^,]+),.*?\bstatus=(?P<status>\w+)"
)

# Nothing is chrooted, so the instance needs no copy of /etc in its queue folder.
_SERVICES = """\
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
lmtp      unix  - - n - - lmtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class PostfixError(RuntimeError):
    """The private instance would not start or stop."""


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt as Postfix logged it."""

    recipient: str
    relay: str  # e.g. "127.0.0.1[127.0.0.1]:2424", or "none"
    status: str  # sent, deferred, bounced


class PrivatePostfix:
    """`with PrivatePostfix(lmtp_port=..., relay_port=...) as mta:` then mail to mta.port."""

    def __init__(
        self,
        *,
        lmtp_port: int,
        relay_port: int,
        lmtp_recipients: Sequence[str] = ("support@example.com",),
    ) -> None:
        self.port = free_port()
        self.lmtp_port = lmtp_port
        self.relay_port = relay_port
        self.lmtp_recipients = tuple(lmtp_recipients)
        # Not pytest's tmp_path, whose parents only root may enter: the master opens its
        # lock in data_directory as the mail owner, who must reach it.
        self.folder = Path(tempfile.mkdtemp(prefix="postfix-"))
        self.folder.chmod(0o755)
        self.config_dir = self.folder / "etc"
        self.queue_dir = self.folder / "spool"
        self.data_dir = self.folder / "data"
        self.log_path = self.folder / "postfix.log"
        self._output_path = self.folder / "master.out"
        # Tells our smtpd's greeting from that of anything else on the port.
        self._banner = f"private-postfix-{self.folder.name}"
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> PrivatePostfix:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()

    def start(self) -> None:
        self._write_config()
        # Fails on a bad config with Postfix's own words, before anything runs.
        self._postfix("check")
        with self._output_path.open("ab") as output:
            # start-fg keeps the master our descendant, so stop() can wait for it.
            self._process = subprocess.Popen(
                ["postfix", "-c", str(self.config_dir), "start-fg"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
            )
        self._wait_for_banner()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            self._postfix("stop", check=False)
            try:
                process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self._postfix("abort", check=False)
                process.kill()
                process.wait(TIMEOUT)
        self._end_stragglers()

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- what the test looks at -----------------------------------------------

    def queue(self) -> list[dict[str, Any]]:
        """The queued mails, one dict per mail as `postqueue -j` describes it."""
        output = self._postfix_command("postqueue", "-j").stdout
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def wait_for_empty_queue(self, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while queued := self.queue():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Postfix queue not empty after {timeout}s: {queued}\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        tail = "\n".join(self.log().splitlines()[-lines:]) or "(empty)"
        return f"--- Postfix log ({self.log_path}) ---\n{tail}"

    def deliveries(self) -> list[Delivery]:
        return [
            Delivery(found["to"], found["relay"], found["status"])
            for found in map(_DELIVERY.search, self.log().splitlines())
            if found is not None
        ]

    @property
    def lmtp_relay(self) -> str:
        return f"127.0.0.1[127.0.0.1]:{self.lmtp_port}"

    @property
    def relay_host(self) -> str:
        return f"127.0.0.1[127.0.0.1]:{self.relay_port}"

    # -- internals -----------------------------------------------------------

    def _write_config(self) -> None:
        for folder in (self.config_dir, self.queue_dir, self.data_dir):
            folder.mkdir()
        # The master takes its lock here after dropping to the mail owner.
        owner = pwd.getpwnam(MAIL_OWNER)
        os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
        transport = self.config_dir / "transport"
        transport.write_text(
            "".join(
                f"{rcpt}  lmtp:inet:127.0.0.1:{self.lmtp_port}\n" for rcpt in self.lmtp_recipients
            )
        )
        (self.config_dir / "main.cf").write_text(
            f"""\
# The newest level that every Postfix with maillog_file (3.4 and later) knows.
compatibility_level = 2
queue_directory = {self.queue_dir}
data_directory = {self.data_dir}
myhostname = {HOSTNAME}
# Nothing is delivered locally: every address is either the gateway's or the sink's.
mydestination =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# The gateway sends its replies through this smtpd, so loopback clients may relay.
mynetworks = 127.0.0.0/8
transport_maps = hash:{transport}
relayhost = [127.0.0.1]:{self.relay_port}
smtpd_banner = $myhostname ESMTP {self._banner}
maillog_file = {self.log_path}
# Postfix writes a log only under these prefixes (by default /var and /dev/stdout).
maillog_file_prefixes = {self.folder}
# A deferred mail is retried within seconds, not the default minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""
        )
        (self.config_dir / "master.cf").write_text(
            f"127.0.0.1:{self.port} inet n - n - - smtpd\n{_SERVICES}"
        )
        # Postfix rereads a config file changed in the last second or so, every 0.3 s,
        # in case it is still being written: that cost each command here 1.5 s.
        aged = time.time() - 10
        for written in self.config_dir.iterdir():
            os.utime(written, (aged, aged))
        self._postfix_command("postmap", str(transport))

    def _postfix(self, command: str, *, check: bool = True) -> None:
        self._postfix_command("postfix", command, check=check)

    def _postfix_command(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [program, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            raise PostfixError(
                f"{program} {' '.join(args)} exited {result.returncode}: "
                f"{result.stderr.strip()}\n{self.log_tail()}"
            )
        return result

    def _wait_for_banner(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                output = self._output_path.read_text(errors="replace")
                self._process = None
                raise PostfixError(f"postfix start-fg exited: {output}\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock,
            ):
                if self._banner.encode() in sock.recv(512):
                    return
            time.sleep(0.05)
        self.stop()
        raise PostfixError(f"smtpd did not greet on port {self.port}\n{self.log_tail()}")

    def _end_stragglers(self) -> None:
        """Children notice their master is gone and exit; give them a moment, then kill.

        Every daemon of this instance, and no other process, works in its queue folder.
        """
        deadline = time.monotonic() + TIMEOUT
        while pids := self._pids_in_queue_dir():
            if time.monotonic() > deadline + TIMEOUT:
                raise PostfixError(f"Postfix processes {pids} survived SIGKILL")
            if time.monotonic() > deadline:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def _pids_in_queue_dir(self) -> list[int]:
        pids = []
        for cwd in Path("/proc").glob("[0-9]*/cwd"):
            with contextlib.suppress(OSError):
                if Path(os.readlink(cwd)) == self.queue_dir:
                    pids.append(int(cwd.parent.name))
        return pids
