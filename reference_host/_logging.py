"""Structured logging: one event name plus key=value fields, as text or JSON lines.

Call ``log(logger, level, "event.name", key=value, ...)``; ``configure_logging`` installs a
formatter that renders the fields either as ``key=value`` text or as one JSON object per line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Final, Literal

LogFormat = Literal["text", "json"]

_FIELDS_ATTR: Final = "agentworker_fields"


def log(logger: logging.Logger, level: int, event: str, /, **fields: object) -> None:
    """Log ``event`` with structured ``fields`` if ``level`` is enabled."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={_FIELDS_ATTR: fields}, stacklevel=2)


def _fields(record: logging.LogRecord) -> dict[str, object]:
    value = getattr(record, _FIELDS_ATTR, None)
    return dict(value) if isinstance(value, dict) else {}


def _text_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    """Renders ``2024-01-01T00:00:00.000Z INFO logger event key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"{stamp}.{int(record.msecs):03d}Z",
            record.levelname,
            record.name,
            record.getMessage(),
        ]
        parts.extend(f"{key}={_text_value(value)}" for key, value in _fields(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """Renders one JSON object per line: ts, level, logger, event and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in _fields(record).items():
            body.setdefault(key, value)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def configure_logging(fmt: LogFormat = "text", level: int = logging.INFO) -> None:
    """Send the ``reference_host`` loggers to stderr in the given format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger = logging.getLogger("reference_host")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
