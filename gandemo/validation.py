"""Input checks shared by every task. Tasks raise `InvalidInput`; the UI turns it into `gr.Error`."""

from __future__ import annotations

import math
import numbers
from typing import Any


class InvalidInput(ValueError):
    """A request input is not allowed; the message says what was wrong and what is allowed."""


def as_int(value: Any, name: str, lo: int, hi: int) -> int:
    """`value` as an int in [lo, hi]; whole floats (3.0) and digit strings are accepted."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidInput(f"{name} must be a whole number from {lo} to {hi}, got {value!r}") from None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidInput(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidInput(f"{name} must be from {lo} to {hi}, got {value}")
    return value


def as_float(value: Any, name: str, lo: float, hi: float) -> float:
    """`value` as a finite float in [lo, hi]; numeric strings are accepted, NaN/inf/bool are not."""
    allowed = f"{name} must be a number from {lo:g} to {hi:g}"
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{allowed}, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidInput(f"{allowed}, got {value!r}") from None
    if not isinstance(value, numbers.Real):  # ints, floats, numpy scalars
        raise InvalidInput(f"{allowed}, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInput(f"{allowed}, got {value}")
    if not lo <= value <= hi:
        raise InvalidInput(f"{allowed}, got {value:g}")
    return value
