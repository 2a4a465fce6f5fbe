"""Report charts: weekly escalation volume by level, and the time-to-first-response trend.

matplotlib's Agg backend renders to a file with no display, so this works on servers
and in cron jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

# The backend is chosen before pyplot is imported, so no display is ever needed.
import matplotlib.pyplot as plt

from gateway.ops.reports import CaseFacts, percentile

LEVEL_COLOURS = {1: "#9ecae1", 2: "#4292c6", 3: "#fd8d3c", 4: "#d94701"}


def week_of(facts: CaseFacts) -> date:
    day = facts.opened_at.date()
    return day - timedelta(days=day.weekday())


def weekly(facts: Sequence[CaseFacts]) -> list[date]:
    if not facts:
        return []
    first, last = min(map(week_of, facts)), max(map(week_of, facts))
    return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]


def render_chart(facts: Sequence[CaseFacts], path: Path, title: str = "Escalations") -> None:
    weeks = weekly(facts)
    labels = [f"{w:%d %b}" for w in weeks]
    # Numeric positions with text ticks: strings as x values would make matplotlib log
    # a warning per series about "categorical units" into the gateway's log.
    x = list(range(len(weeks)))
    figure, (volume, trend) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    bottom = [0] * len(weeks)
    for level in (1, 2, 3, 4):
        counts = [sum(1 for f in facts if f.level == level and week_of(f) == w) for w in weeks]
        volume.bar(x, counts, bottom=bottom, label=f"level {level}", color=LEVEL_COLOURS[level])
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    volume.set_ylabel("escalations opened")
    volume.set_title(f"{title}: weekly volume by level")
    volume.legend(loc="upper left", fontsize="small")

    for share, style in ((0.5, "-o"), (0.9, "--s")):
        hours: list[float] = []
        for w in weeks:
            values = [
                f.first_response_business
                for f in facts
                if week_of(f) == w and f.first_response_business is not None
            ]
            value = percentile(values, share)
            hours.append(value.total_seconds() / 3600 if value is not None else float("nan"))
        trend.plot(x, hours, style, label=f"p{int(share * 100)}")
    trend.set_ylabel("hours (business time)")
    trend.set_title("Time to first response")
    trend.set_xticks(x, labels)
    trend.set_xlabel("week starting")
    trend.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
