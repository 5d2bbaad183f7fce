"""cli.logs: structured logging (structlog) to stderr, as JSON lines or for a console.

Logs never carry secret values: the engine logs keys, resource ids and error messages,
never rendered user data or resolved inputs. For the same reason a logged exception's
traceback never shows local variables (a render's locals hold the secrets it was given):
the console renderer's rich traceback is told so, and JSON lines carry the plain traceback
text under ``exception``.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


class _StderrLogger:
    """Writes each line to whatever ``sys.stderr`` is *now* (it may be replaced after set-up)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stderr_logger(*_args: object) -> _StderrLogger:
    return _StderrLogger()


def configure(*, fmt: str = "console", verbosity: int = 0, color: bool = True) -> None:
    """Set up structlog: ``fmt`` is ``json`` or ``console``; -v shows info, -vv debug. Console logs
    are coloured only on a terminal, and not when ``color`` is false or ``NO_COLOR`` is set."""
    level = logging.WARNING - 10 * min(verbosity, 2)
    renderers: list[structlog.types.Processor]
    if fmt == "json":
        renderers = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        colors = color and sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        traceback = structlog.dev.RichTracebackFormatter(
            show_locals=False, color_system="truecolor" if colors else None
        )
        renderers = [structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=traceback)]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *renderers,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
