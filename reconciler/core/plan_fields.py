"""core.plan_fields: the typed readers of a plan file's fields, and a size's JSON form.

A plan file can be edited, so every field read back is checked for its type and range here;
a wrong one raises ``ValueError`` with what was found (long values shortened), which the
plan codec reports with the field's place.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from reconciler.core.limits import money_problem, size_problem
from reconciler.core.model import Size


def size_to_dict(size: Size) -> dict[str, int]:
    return {"cpus": size.cpus, "memory_mb": size.memory_mb, "disk_gb": size.disk_gb}


def size_from(data: Mapping[str, Any]) -> Size:
    data = obj(data)
    for name in ("cpus", "memory_mb", "disk_gb"):  # the ranges are size_problem's, said with the field
        if isinstance(data[name], bool) or not isinstance(data[name], int):
            raise ValueError(f"size {name} must be a whole number, found {shown(repr(data[name]))}")
    return Size(data["cpus"], data["memory_mb"], data["disk_gb"])


def whole(value: Any) -> int:
    """A whole number of a plan file, within 64 bits."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise ValueError(f"expected a whole number, found {shown(repr(value))}")
    return value


def desired_size_from(data: Mapping[str, Any]) -> Size:
    """A size to create or resize to: within the limits the desired state has (a plan file can be edited)."""
    size = size_from(data)
    problem = size_problem(size)
    if problem is not None:
        raise ValueError(f"size {problem}")
    return size


def rate(value: Any) -> Decimal:
    """A rate of a saved price list, bounded as a PriceList's rates are."""
    figure = Decimal(str(value))
    problem = money_problem(figure)
    if problem is not None:
        raise ValueError(f"rate {shown(value)} {problem}")
    return figure


def shown(value: Any) -> str:
    said = str(value)
    return said if len(said) <= 30 else f"{said[:20]}… ({len(said)} characters)"


def text(value: Any) -> str:
    """A text field of a plan file (an edited file may hold anything)."""
    if not isinstance(value, str):
        raise ValueError(f"expected text, found {shown(repr(value))}")
    return value


def opt_text(value: Any) -> str | None:
    return None if value is None else text(value)


def texts(value: Any) -> tuple[str, ...]:
    return tuple(text(item) for item in seq(value))


def seq(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, found {shown(repr(value))}")
    return value


def obj(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, found {shown(repr(value))}")
    return value


def amount(value: Any) -> Decimal:
    """An amount of a plan's cost: a finite decimal number, as ``plan_to_dict`` writes it."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected an amount, found {shown(repr(value))}")
    figure = Decimal(str(value))
    if not figure.is_finite() or abs(figure) >= Decimal(10) ** 18:
        raise ValueError(f"amount {shown(value)} is not a finite amount below 10^18")
    return figure


def tags(value: Any) -> tuple[tuple[str, str], ...]:
    pairs = [seq(pair) for pair in seq(value)]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError("a tag is a [name, value] pair")
    return tuple((str(k), str(v)) for k, v in pairs)
