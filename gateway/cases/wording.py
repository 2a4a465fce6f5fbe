"""How a level's clocks read in mail, so that what a mail promises is true.

On a business calendar every target counts business time only: "1h" from Friday
16:30 on a 09:00-17:00 calendar ends on Monday at 09:30, so a mail must not say
"within 1 hour". It says "within 1 business hour" and names the business hours.
Days are not business days ("2d" is 48 business hours, six 8-hour working days),
so business durations are always said in hours and minutes.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.config import GatewayConfig, LevelConfig
from gateway.timefmt import format_duration

_DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
_WEEK = tuple(_DAY_NAMES)


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def business_duration(duration: timedelta) -> str:
    """E.g. "1 business hour", "48 business hours", "1 business hour 30 minutes"."""
    minutes = int(duration.total_seconds()) // 60
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return _plural(minutes, "business minute")
    text = _plural(hours, "business hour")
    return f"{text} {_plural(minutes, 'minute')}" if minutes else text


def _days_text(days: tuple[str, ...]) -> str:
    ordered = sorted(days, key=_WEEK.index)
    indexes = [_WEEK.index(d) for d in ordered]
    if len(ordered) > 2 and indexes == list(range(indexes[0], indexes[-1] + 1)):
        return f"{_DAY_NAMES[ordered[0]]} to {_DAY_NAMES[ordered[-1]]}"
    return ", ".join(_DAY_NAMES[d] for d in ordered)


class LevelWording:
    """The duration and calendar texts of one config, per level."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config

    def business_hours(self, level: LevelConfig) -> str:
        """E.g. "09:00-17:00 UTC, Monday to Friday"; empty when the level never closes."""
        if level.calendar == "24x7":
            return ""
        calendar = self.config.calendars[level.calendar]
        if calendar.always_open:
            return ""
        text = f"{calendar.hours} {calendar.timezone}, {_days_text(calendar.working_days)}"
        return text + (", except holidays" if calendar.holidays else "")

    def duration(self, level: LevelConfig, duration: timedelta) -> str:
        """A target of this level as it counts: business time on a business calendar."""
        if self.business_hours(level):
            return business_duration(duration)
        return format_duration(duration)
