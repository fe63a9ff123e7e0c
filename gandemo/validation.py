"""Input checks shared by every task. Tasks raise `InvalidInput`; the UI turns it into `gr.Error`.

Messages echo what was sent through `shown`, cut short: a hostile request (a megabyte of text, a
5,000-digit number) gets a message of a line, never its own payload back."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

SHOWN_MAX = 40  # characters of a refused value that a message repeats


class InvalidInput(ValueError):
    """A request input is not allowed; the message says what was wrong and what is allowed."""


def shown(value: Any, limit: int = SHOWN_MAX) -> str:
    """`repr(value)` for a message, at most `limit` characters (a cut one ends in '...'). Integers too
    long to print (Python refuses more than 4,300 digits) are described by their size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {'negative ' if value < 0 else ''}number of about {int(value.bit_length() * math.log10(2))} digits"
    try:
        text = repr(value)
    except Exception:  # a repr that fails must not turn a plain refusal into a crash
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number_or_text(value: Any, allowed: str) -> Any:
    """The first check of every number input: bool and None are refused (a bool is an int to
    Python), and text is read as a float; anything else comes back as it is."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{allowed}, got {shown(value)}")
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise InvalidInput(f"{allowed}, got {shown(value)}") from None
    return value


def as_int(value: Any, name: str, lo: int, hi: int) -> int:
    """`value` as an int in [lo, hi]; whole floats (3.0) and digit strings are accepted."""
    allowed = f"{name} must be a whole number from {lo} to {hi}"
    value = _number_or_text(value, allowed)
    if isinstance(value, numbers.Integral):  # numpy integers too
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidInput(f"{allowed}, got {shown(value)}")
        value = int(value)
    else:
        raise InvalidInput(f"{allowed}, got {shown(value)}")
    if not lo <= value <= hi:
        raise InvalidInput(f"{name} must be from {lo} to {hi}, got {shown(value)}")
    return value


def as_float(value: Any, name: str, lo: float, hi: float) -> float:
    """`value` as a finite float in [lo, hi]; numeric strings are accepted, NaN/inf/bool are not."""
    allowed = f"{name} must be a number from {lo:g} to {hi:g}"
    value = _number_or_text(value, allowed)
    if not isinstance(value, numbers.Real):  # ints, floats, numpy scalars
        raise InvalidInput(f"{allowed}, got {shown(value)}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float's range
        raise InvalidInput(f"{allowed}, got {shown(value)}") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{allowed}, got {value}")
    if not lo <= value <= hi:
        raise InvalidInput(f"{allowed}, got {value:g}")
    return value


def as_bool(value: Any, name: str) -> bool:
    """A yes/no input: True/False (numpy's too), 1/0 or "true"/"false" (any case), else InvalidInput."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInput(f"{name} must be true or false, got {shown(value)}")
