"""Log lines as readable text or as one JSON object per line, for log shippers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def use_format(kind: str) -> None:
    """Switch every root handler (set up by basicConfig) to the given format."""
    formatter: logging.Formatter = (
        JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
