"""run.logger: a structlog logger that imports structlog when it first logs.

structlog (with the rich it brings) takes a tenth of a second to import, and most runs of
the engine never log a line: a plan that finds nothing wrong, a validate. Every module that
logs holds ``log = get_logger("reconciler.run.…")``; the first call on it imports structlog and asks
it for the logger, which then follows whatever ``structlog.configure`` set up (``cli.logs``
applies the command line's set-up the moment structlog is imported).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger


class _LazyLogger:
    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, name)


def get_logger(name: str) -> FilteringBoundLogger:
    """``structlog.get_logger(name)``, made on first use."""
    return _LazyLogger(name)
