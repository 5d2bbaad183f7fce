"""cli.logs: structured logging (structlog) to stderr, as JSON lines or for a console.

Logs never carry secret values: the engine logs keys, resource ids and error messages,
never rendered user data or resolved inputs. For the same reason a logged exception's
traceback never shows local variables (a render's locals hold the secrets it was given):
the console renderer's rich traceback is told so, and JSON lines carry the plain traceback
text under ``exception``.

structlog (and the rich it brings) costs a tenth of a second to import, and commands such as
``validate`` or ``--help`` never log. So ``configure`` does not import it: when structlog is
not loaded yet, the set-up is applied the moment something first imports it (every module
that logs imports structlog at its top, before any line is logged). ``logger`` is a logger
for the CLI's own modules that imports structlog on its first use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import importlib.machinery
    import types

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
    are coloured only on a terminal, and not when ``color`` is false or ``NO_COLOR`` is set.

    Applied now when structlog is loaded, else when it first is (``_ConfigureOnImport``)."""
    colors = color and sys.stderr.isatty() and not os.environ.get("NO_COLOR")

    def apply() -> None:
        _apply(fmt=fmt, verbosity=verbosity, colors=colors)

    for finder in [f for f in sys.meta_path if isinstance(f, _ConfigureOnImport)]:
        sys.meta_path.remove(finder)  # the last set-up asked for wins
    if "structlog" in sys.modules:
        apply()
    else:
        sys.meta_path.insert(0, _ConfigureOnImport(apply))


def _apply(*, fmt: str, verbosity: int, colors: bool) -> None:
    import logging

    import structlog

    level = logging.WARNING - 10 * min(verbosity, 2)
    renderers: list[structlog.types.Processor]
    if fmt == "json":
        renderers = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
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


class _ConfigureOnImport:
    """Finds nothing itself: when ``structlog`` is imported, it lets the other finders find it,
    then runs ``apply`` once the package has loaded, and removes itself."""

    def __init__(self, apply: Callable[[], None]) -> None:
        self.apply = apply

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "structlog":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ThenApply(spec.loader, self.apply)
                return spec  # type: ignore[no-any-return]
        return None


class _ThenApply:
    """A loader that loads as ``inner`` does, then calls ``after``."""

    def __init__(self, inner: Any, after: Callable[[], None]) -> None:
        self.inner = inner
        self.after = after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        module: types.ModuleType | None = self.inner.create_module(spec)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        self.inner.exec_module(module)
        self.after()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """``structlog.get_logger(name)``, imported and made when first used (``run.logger``)."""
    from reconciler.run.logger import get_logger

    return get_logger(name)
