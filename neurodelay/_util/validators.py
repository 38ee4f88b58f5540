"""attrs validators whose messages name the field, constraint, value and fix.

Numbers may be given as numpy scalars (``np.int64(4)``, ``np.float32(0.5)``):
a validator that accepts one stores the plain Python ``int`` or ``float`` in
its place, so that specs compare, hash and save (YAML, JSON) exactly as if the
plain number had been given. Booleans are never numbers here.
"""

from __future__ import annotations

import math
import numbers


def is_int(value) -> bool:
    """Whether ``value`` is an integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """Whether ``value`` is a real number (Python or numpy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def store_plain(inst, attr, value, kind: type) -> None:
    """Store an accepted numpy scalar ``value`` of field ``attr`` as a plain ``kind`` (int or float).

    Frozen attrs classes run their validators after every field is set, so
    the field is replaced in place; a value that already is a plain ``int``
    or ``float`` is left untouched.
    """
    if type(value) not in (int, float):
        object.__setattr__(inst, attr.name, kind(value))


def positive_int(inst, attr, value):
    if not is_int(value) or value < 1:
        raise ValueError(f"{attr.name} must be a positive integer, got {value!r}; use e.g. {attr.name}=4.")
    store_plain(inst, attr, value, int)


def in_unit_interval(inst, attr, value):
    if not is_real(value) or not (0.0 <= value <= 1.0):
        raise ValueError(
            f"{attr.name} must be in [0, 1], got {value!r}; "
            f"0 uses only the drive, 1 only the prediction."
        )
    store_plain(inst, attr, value, float)


def finite_float(inst, attr, value):
    if not is_real(value) or not math.isfinite(value):
        raise ValueError(f"{attr.name} must be a finite number, got {value!r}.")
    store_plain(inst, attr, value, float)


def image_size(inst, attr, value):
    if not is_int(value) or value < 16 or value % 16:
        raise ValueError(
            f"{attr.name} must be a multiple of 16 (the backbone halves it four times), "
            f"got {value!r}; use 32 or 64."
        )
    store_plain(inst, attr, value, int)


def as_names(value, what: str, expected: str = "a name or a list of names", hint: str = "",
             error: type = TypeError) -> tuple:
    """A tuple of names from ``value``: a single name (a str) is a one-name tuple.

    Anything that is neither a str nor iterable raises ``error`` saying that
    ``what`` must be ``expected``, with ``hint`` appended.
    """
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(value)
    except TypeError:
        raise error(f"{what} must be {expected}, got {value!r}{hint}.") from None
