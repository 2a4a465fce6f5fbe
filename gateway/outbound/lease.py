"""Who holds an outbox lease, and whether that process is gone.

A claimed mail records its holder as host, PID namespace, PID and a start token (the
boot id and the process's start time in the kernel's clock ticks). A sender on the
same host and namespace can then tell a dead holder from a live one: no such PID,
or the PID now belongs to a later process. A holder on another host (several daemons
sharing a PostgreSQL store) cannot be checked from here, so its lease runs its term.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return None


def _namespace() -> str:
    # Containers on one host may share its name; their PID namespaces differ.
    try:
        link = os.readlink(_PROC / "self" / "ns" / "pid")
    except OSError:
        return "-"
    return link.removeprefix("pid:[").removesuffix("]")


def _start_ticks(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: when the process started, in ticks since boot."""
    stat = _read(_PROC / str(pid) / "stat")
    if stat is None:
        return None
    # The command name (field 2) may hold spaces and parentheses; it ends at the last ")".
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _boot_id() -> str:
    boot = _read(_PROC / "sys" / "kernel" / "random" / "boot_id")
    return boot.replace("-", "")[:12] if boot else "-"


@dataclass(frozen=True)
class LeaseHolder:
    host: str
    namespace: str
    pid: int
    start: str

    def __str__(self) -> str:
        return f"host={self.host} ns={self.namespace} pid={self.pid} start={self.start}"

    @classmethod
    def parse(cls, text: str) -> LeaseHolder | None:
        fields = dict(part.partition("=")[::2] for part in text.split())
        try:
            return cls(fields["host"], fields["ns"], int(fields["pid"]), fields["start"])
        except (KeyError, ValueError):
            return None

    def same_host(self, other: LeaseHolder) -> bool:
        return (self.host, self.namespace) == (other.host, other.namespace)


def _start_token(pid: int) -> str | None:
    ticks = _start_ticks(pid)
    return f"{_boot_id()}.{ticks}" if ticks is not None else None


def _holder_for(pid: int) -> LeaseHolder:
    # Without /proc there is nothing to check a start time against; a random token
    # still keeps two processes apart, and such a holder is only ever judged by PID.
    token = _start_token(pid) or f"r.{secrets.token_hex(6)}"
    return LeaseHolder(socket.gethostname(), _namespace(), pid, token)


# Keyed by PID: a forked child must not inherit its parent's identity.
_IDENTITY: dict[int, LeaseHolder] = {}


def current_holder() -> LeaseHolder:
    """This process as a lease holder."""
    pid = os.getpid()
    holder = _IDENTITY.get(pid)
    if holder is None:
        holder = _IDENTITY.setdefault(pid, _holder_for(pid))
    return holder


def is_gone(holder: LeaseHolder) -> bool:
    """True only when the holder is known dead: same host and namespace, and no such process."""
    me = current_holder()
    if not holder.same_host(me):
        return False
    if holder == me:
        return False
    if holder.start.startswith("r."):
        return not _pid_exists(holder.pid)
    # A PID reused by a later process (or the same PID after a reboot) has another token.
    return _start_token(holder.pid) != holder.start


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
