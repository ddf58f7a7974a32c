"""Log output: readable text by default, or one JSON object per line for log shippers."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping

from aiohttp.http_exceptions import HttpProcessingError


def log_fields(logger: logging.Logger, level: int, fields: Mapping[str, object]) -> None:
    """One line of ``key=value`` fields (an access line, say); in JSON each field is a key of
    its own besides the line."""
    if logger.isEnabledFor(level):
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        logger.log(level, "%s", text, extra={"fields": dict(fields)})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update((k, v) for k, v in fields.items() if k not in entry)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ProtocolNoise(logging.Filter):
    """aiohttp logs every malformed request it refuses at ERROR with a traceback: any client
    could flood the log that way. Such a refusal is the client's mistake, already answered with
    a 400; it becomes one WARNING line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "aiohttp.server" and record.exc_info:
            error = record.exc_info[1]
            if isinstance(error, HttpProcessingError):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                record.msg = f"refused a malformed request: {error!r}"
                record.args = None
                record.exc_info = record.exc_text = None
        return True


def configure_logging(level: str, log_format: str) -> None:
    # Neither format prints the caller's file and line, thread or process: not collecting them
    # saves a stack walk and three lookups per record (the logging HOWTO's "Optimization"),
    # and every request writes one access-log record on the event loop.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ProtocolNoise())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
