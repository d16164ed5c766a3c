"""Process logging of `knscale serve` and `knscale reconcile`: `--log-format text|json`.

Both formats carry the same information. An event (one admission decision, one scale decision)
is a log record whose `knscale` attribute holds its fields (`extra={"knscale": {...}}`, set by
`webhook.audit` and `reconciler.scaling.decisionlog`): the text format appends them as
`key=value` pairs after the message, the JSON format makes them keys of the line's object.

JSON lines are one object per line with stable keys: `ts` (RFC 3339, UTC, milliseconds),
`level`, `logger`, `msg`, then the event's own fields, then `exc` when an exception was logged.
An event field never replaces one of the four: it would make a line say something else than
what happened (a field named `level` is written as `field_level`). A record whose message already
spells its fields (`knscale_in_msg`, the reconciler's `decision …` line that tools grep for) is
printed as it is in the text format.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

LogFormat = Literal["text", "json"]
EVENT_ATTRIBUTE = "knscale"
IN_MESSAGE_ATTRIBUTE = "knscale_in_msg"
_RESERVED = frozenset({"ts", "level", "logger", "msg", "exc"})
_NEEDS_QUOTES = re.compile(r"[\s\"'=\\]")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def event_fields(record: logging.LogRecord) -> Mapping[str, Any]:
    fields = getattr(record, EVENT_ATTRIBUTE, None)
    return fields if isinstance(fields, Mapping) else {}


def _text_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    text = str(value)
    # Quoted when it would not read back as one token (spaces, quotes, '='); repr also escapes
    # any newline, so a value cannot start a forged log line.
    if not text or _NEEDS_QUOTES.search(text) or not text.isprintable():
        return repr(text)
    return text


class TextFormatter(logging.Formatter):
    """The classic line, with an event's fields appended as `key=value`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = event_fields(record)
        if not fields or getattr(record, IN_MESSAGE_ATTRIBUTE, False):
            return line
        head, sep, tail = line.partition("\n")  # a traceback stays below the fields
        pairs = " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        return f"{head} {pairs}{sep}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the event's fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in event_fields(record).items():
            doc[f"field_{key}" if key in _RESERVED else str(key)] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        # default=str: a field of an unexpected type is written as text, never a failed line.
        return orjson.dumps(doc, default=str).decode()


def configure_logging(level: str, fmt: LogFormat, stream: TextIO | None = None) -> None:
    """Route the root logger (and uvicorn's) to one stderr handler in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn configures its loggers with handlers of its own (plain text) unless told not to;
    # its records go through the root handler instead, so a JSON log stays all JSON.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
