"""A private, throwaway Dovecot IMAP server for integration tests.

Each ``DovecotServer`` owns a temporary directory holding its config, runtime
sockets, state, log and maildirs, so several can run side by side with each
other and with any system-wide Dovecot.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from imapclient import IMAPClient

DOVECOT_BIN = "dovecot"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CLIENT_TIMEOUT = 10.0

_APPENDUID_RE = re.compile(rb"\[APPENDUID \d+ (\d+)\]")


class DovecotError(RuntimeError):
    """Raised when the private Dovecot instance misbehaves."""


def dovecot_version() -> tuple[int, ...]:
    """Return the installed Dovecot version, e.g. ``(2, 3, 19, 1)``."""
    binary = shutil.which(DOVECOT_BIN) or "/usr/sbin/dovecot"
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DovecotError("dovecot is not installed; run tests/install-system-deps.sh") from exc
    match = re.match(r"\s*(\d+(?:\.\d+)*)", out)
    if match is None:
        raise DovecotError(f"cannot parse dovecot version from {out!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _live_group_members(pgid: int) -> list[int]:
    """PIDs in the process group, not counting zombies.

    Orphaned helpers are reparented to PID 1, which in containers may reap
    them late; a zombie holds no sockets or files, so it is not waited for.
    """
    members = []
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue
        # The command name is parenthesised and may itself contain spaces.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat_path.parent.name))
    return members


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


class DovecotServer:
    """A Dovecot instance listening for plain-text IMAP on 127.0.0.1.

    Users live in a passwd-file with plain passwords; mail is stored as
    maildir++ under the instance's temporary directory.
    """

    def __init__(
        self, separator: str = "/", workdir: Path | None = None, port: int | None = None
    ) -> None:
        if os.geteuid() != 0:
            # Running unprivileged needs a different set of service users and
            # chroot settings; the project's machines and CI all run as root.
            raise DovecotError("DovecotServer must run as root")
        self.version = dovecot_version()
        self.separator = separator
        self._owns_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="dovecot-")) if workdir is None else workdir
        self.base_dir = self.workdir / "run"
        self.state_dir = self.workdir / "state"
        self.mail_root = self.workdir / "mail"
        self.config_path = self.workdir / "dovecot.conf"
        self.users_path = self.workdir / "users"
        self.log_path = self.workdir / "dovecot.log"
        self.stderr_path = self.workdir / "dovecot.stderr"
        self._users: dict[str, str] = {}
        self._port = port
        # Lets start() tell our greeting from that of whatever else might
        # have grabbed the port in the meantime.
        self._greeting_token = f"instance {self.workdir.name}"
        self._proc: subprocess.Popen[bytes] | None = None
        for directory in (self.base_dir, self.state_dir, self.mail_root):
            directory.mkdir(parents=True, exist_ok=True)
        self.users_path.touch()
        # The auth process runs as the unprivileged internal user and must
        # reach the passwd-file; mkdtemp() makes the directory private.
        self.workdir.chmod(0o711)
        nobody = pwd.getpwnam("nobody")
        self._mail_owner = (nobody.pw_uid, nobody.pw_gid)
        os.chown(self.mail_root, *self._mail_owner)

    # -- lifecycle ---------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._port is None:
            raise DovecotError("server has never been started, so it has no port yet")
        return self._port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        if self._port is None:
            # Picked once so restart() comes back on the address clients know.
            self._port = _free_port()
        self._write_config()
        with self.stderr_path.open("ab") as stderr:
            self._proc = subprocess.Popen(
                [self._binary(DOVECOT_BIN), "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                # Own process group, so kill() can take the helpers down too.
                start_new_session=True,
            )
        self._wait_for_greeting()

    def stop(self) -> None:
        """Shut down gracefully; open client connections are dropped."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
        self._reap_group(proc)
        self._proc = None

    def kill(self) -> None:
        """Die abruptly, as a crashed or OOM-killed server would."""
        proc = self._proc
        if proc is None:
            return
        self._kill_group(proc)
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        if self._owns_workdir:
            # The mail store is about to be deleted, so skip the graceful
            # shutdown, which costs Dovecot about a second.
            self.kill()
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            self.stop()

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def log_tail(self, lines: int = 40) -> str:
        return (
            f"--- {self.log_path} ---\n{_tail(self.log_path, lines)}\n"
            f"--- {self.stderr_path} ---\n{_tail(self.stderr_path, lines)}"
        )

    # -- users and mailboxes -----------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        if ":" in name or ":" in password or "\n" in name + password:
            raise ValueError("user names and passwords may not contain ':' or newlines")
        self._users[name] = password
        # Dovecot re-reads the passwd-file when its mtime changes, so users
        # added while the server runs can log in straight away.
        tmp = self.users_path.with_suffix(".tmp")
        tmp.write_text("".join(f"{user}:{{PLAIN}}{pw}::::::\n" for user, pw in self._users.items()))
        tmp.chmod(0o644)
        tmp.replace(self.users_path)

    @contextlib.contextmanager
    def session(self, user: str, password: str) -> Iterator[IMAPClient]:
        """A logged-in client that is logged out (or dropped) afterwards."""
        client = self.client(user, password)
        try:
            yield client
        finally:
            try:
                client.logout()
            except (imaplib.IMAP4.error, OSError):
                # The connection is already broken; don't mask the real error.
                client.shutdown()

    def client(self, user: str, password: str) -> IMAPClient:
        """Return a logged-in client; the caller must ``logout()`` it."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=CLIENT_TIMEOUT)
        try:
            client.login(user, password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def append(
        self,
        user: str,
        password: str,
        folder: str,
        raw_bytes: bytes,
        flags: Sequence[str | bytes] = (),
    ) -> int | None:
        """Deliver a message by IMAP APPEND and return its UID when known."""
        with self.session(user, password) as client:
            response = client.append(folder, raw_bytes, flags=tuple(flags))
        raw = response if isinstance(response, bytes) else str(response).encode()
        match = _APPENDUID_RE.search(raw)
        return int(match.group(1)) if match else None

    def create_folder(self, user: str, password: str, folder: str) -> None:
        with self.session(user, password) as client:
            client.create_folder(folder)
            client.subscribe_folder(folder)

    def delete_folder(self, user: str, password: str, folder: str) -> None:
        with self.session(user, password) as client:
            client.unsubscribe_folder(folder)
            client.delete_folder(folder)

    def folder_uids(self, user: str, password: str, folder: str) -> list[int]:
        with self.session(user, password) as client:
            client.select_folder(folder, readonly=True)
            return sorted(int(uid) for uid in client.search("ALL"))

    def uidvalidity(self, user: str, password: str, folder: str) -> int:
        with self.session(user, password) as client:
            status = client.folder_status(folder, [b"UIDVALIDITY"])
        return int(status[b"UIDVALIDITY"])

    def reset_uidvalidity(self, user: str, password: str, folder: str) -> int:
        """Make Dovecot forget the folder's UIDs, as after a mailbox rebuild.

        Messages survive but get fresh UIDs under a new UIDVALIDITY, which is
        returned. The server is restarted on the same port to do this.
        """
        before = self.uidvalidity(user, password, folder)
        folder_dir = self._maildir_for(user, folder)
        self.stop()
        doomed = [folder_dir / "dovecot-uidlist", *folder_dir.glob("dovecot.index*")]
        # The mailbox list index caches UIDVALIDITY for STATUS replies.
        doomed += list(self._user_maildir(user).glob("dovecot.list.index*"))
        for path in doomed:
            path.unlink(missing_ok=True)
        self.start()
        after = self.uidvalidity(user, password, folder)
        if after == before:
            raise DovecotError(f"UIDVALIDITY of {folder!r} stayed at {before} after reset")
        return after

    # -- internals -----------------------------------------------------------

    def _user_maildir(self, user: str) -> Path:
        return self.mail_root / user / "Maildir"

    def _maildir_for(self, user: str, folder: str) -> Path:
        """Map an IMAP folder name to its maildir++ directory."""
        root = self._user_maildir(user)
        if folder.upper() == "INBOX":
            return root
        if "." in folder or not folder.isascii():
            # maildir++ would need escaping or modified UTF-7 here; tests
            # have no use for such names, so refuse rather than guess.
            raise ValueError(f"unsupported folder name for on-disk access: {folder!r}")
        path = root / ("." + folder.replace(self.separator, "."))
        if not path.is_dir():
            raise DovecotError(f"no maildir for folder {folder!r} at {path}")
        return path

    @staticmethod
    def _binary(name: str) -> str:
        return shutil.which(name) or f"/usr/sbin/{name}"

    def _wait_for_greeting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                if proc is not None:
                    self._reap_group(proc)
                self._proc = None
                raise DovecotError(
                    f"dovecot exited during startup (status {code})\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    greeting = sock.recv(1024)
                if greeting.startswith(b"* OK") and self._greeting_token.encode() in greeting:
                    return
                last_error = DovecotError(f"unexpected greeting {greeting!r}")
            except OSError as exc:
                last_error = exc
            time.sleep(0.05)
        proc = self._proc
        if proc is not None:
            self._kill_group(proc)
            self._proc = None
        raise DovecotError(
            f"dovecot did not greet on {self.host}:{self.port} within {START_TIMEOUT:.0f}s "
            f"(last error: {last_error})\n{self.log_tail()}"
        )

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)
        DovecotServer._reap_group(proc)

    @staticmethod
    def _reap_group(proc: subprocess.Popen[bytes]) -> None:
        # Once the master is gone, helpers it left behind (reparented to
        # init) could still hold the port or mail files; make sure none
        # outlive this call so the next start() gets a clean slate.
        deadline = time.monotonic() + STOP_TIMEOUT
        while members := _live_group_members(proc.pid):
            if time.monotonic() > deadline:
                raise DovecotError(f"dovecot processes {members} survived SIGKILL")
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def _write_config(self) -> None:
        common = f"""\
base_dir = {self.base_dir}
state_dir = {self.state_dir}
instance_name = dovecot-test-{self.port}
protocols = imap
listen = 127.0.0.1
log_path = {self.log_path}
info_log_path = {self.log_path}
ssl = no
auth_mechanisms = plain login
auth_verbose = yes
# Tests exercise bad passwords on purpose; the anti-brute-force pause would
# only slow them down.
auth_failure_delay = 0
# Dovecot refuses to serve mail as root whatever first_valid_uid says, so
# mail belongs to "nobody"; helper processes use the package's own users.
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_uid = {self._mail_owner[0]}
mail_gid = {self._mail_owner[1]}
# The inotify wakeup normally makes this moot; it bounds IDLE latency where
# inotify is unavailable.
mailbox_idle_check_interval = 1 secs
login_greeting = Dovecot test {self._greeting_token} ready.

namespace inbox {{
  inbox = yes
  separator = {self.separator}
}}

protocol imap {{
  mail_max_userip_connections = 100
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
        if self.version >= (2, 4):
            specific = f"""\
auth_allow_cleartext = yes
mail_driver = maildir
mail_home = {self.mail_root}/%{{user | username}}
mail_path = ~/Maildir

passdb passwd-file {{
  passwd_file_path = {self.users_path}
}}
userdb passwd-file {{
  passwd_file_path = {self.users_path}
}}
"""
            header = "dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n"
        else:
            specific = f"""\
disable_plaintext_auth = no
mail_home = {self.mail_root}/%n
mail_location = maildir:~/Maildir

passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.users_path}
}}
userdb {{
  driver = passwd-file
  args = {self.users_path}
}}
"""
            header = ""
        self.config_path.write_text(header + common + specific)


@pytest.fixture
def dovecot_server() -> Iterator[DovecotServer]:
    """A started server with users ``support`` and ``escalations`` (password ``secret``)."""
    server = DovecotServer()
    server.add_user("support", "secret")
    server.add_user("escalations", "secret")
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
