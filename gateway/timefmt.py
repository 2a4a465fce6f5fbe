"""Time as text: moments in mail (local, with the zone named) and durations in config and mail."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def format_when(moment: datetime, timezone: str) -> str:
    local = moment.astimezone(ZoneInfo(timezone))
    return local.strftime("%H:%M %Z on %a %d %b %Y")


_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE = re.compile(
    r"\s*(?:(?P<w>\d+)\s*w)?\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?"
    r"\s*(?:(?P<m>\d+)\s*m)?\s*(?:(?P<s>\d+)\s*s)?\s*",
    re.IGNORECASE,
)


def parse_duration(text: str) -> timedelta:
    """Parse compact durations such as ``"90m"``, ``"1h30m"``, ``"2d"``, ``"1w"``.

    Units must appear largest first (w, d, h, m, s). ``d`` and ``w`` are fixed
    24h/168h spans; when fed to :meth:`BusinessCalendar.add` they count
    business hours, not business days. A bare number is rejected because
    "90" is ambiguous between minutes and hours.
    """
    match = _DURATION_RE.fullmatch(text)
    if match is None or not any(match.groupdict().values()):
        raise ValueError(
            f"invalid duration {text!r}: expected e.g. '90m', '1h30m', '2d', '45s', '1w'"
        )
    seconds = sum(int(v) * _UNIT_SECONDS[k] for k, v in match.groupdict().items() if v)
    return timedelta(seconds=seconds)


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def format_duration(td: timedelta) -> str:
    """Human text such as ``"2 hours 30 minutes"``; sub-second parts are dropped."""
    if td < timedelta(0):
        return "-" + format_duration(-td)
    total = int(td.total_seconds())
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    parts = [
        _plural(n, unit)
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second"))
        if n
    ]
    return " ".join(parts) if parts else "0 minutes"
