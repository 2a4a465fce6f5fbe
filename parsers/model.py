"""Typed, immutable view of one inbound mail; the rest of the gateway sees only this."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    email: str  # lower-cased addr-spec, "" when the header held no usable address

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class ParsedMail:
    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str  # RFC 2047 decoded, whitespace folded
    message_id: str  # without angle brackets, "" when absent
    in_reply_to: tuple[str, ...]  # message-ids without angle brackets
    references: tuple[str, ...]
    date: datetime | None  # timezone-aware when the header carried an offset
    text: str  # plain body; HTML converted to text when there is no plain part
    html: str  # raw HTML part, "" when none
    attachment_names: tuple[str, ...]
    # Header names lower-cased; repeated headers keep every value in order.
    headers: tuple[tuple[str, str], ...]
    # Which parser produced this result: "mail-parser" or "stdlib" (fallback).
    parsed_by: str
    defects: tuple[str, ...] = field(default=())

    def header(self, name: str) -> str | None:
        """First value of a header (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    def header_values(self, name: str) -> tuple[str, ...]:
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key == wanted)

    @property
    def all_recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Every message-id this mail points back at, newest reference first."""
        seen: dict[str, None] = {}
        for mid in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(mid, None)
        return tuple(seen)


class UnparseableMail(Exception):
    """Raised only when neither mail-parser nor the standard library can read the bytes."""
