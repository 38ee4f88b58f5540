"""The package's checks of values, in one place: attrs validators, argument checks and name suggestions.

Messages name the field, the constraint, the value and a fix:
``"<field> must be <constraint>, got <value>; <fix>."``. The validator
factories (:func:`flag`, :func:`int_at_least`, :func:`finite_at_least`,
:func:`one_of`) take the words of a message where callers word it their own
way (``qualified``: ``Class.field`` rather than ``field``; ``error``: the
exception raised), so that each check is written once. :func:`check_int`,
:func:`check_flag` and :func:`check_seed` check function arguments the same
way; :func:`closest`, :func:`did_you_mean` and :func:`suggest` propose the
name meant by a mistyped one.

Numbers may be given as numpy scalars (``np.int64(4)``, ``np.float32(0.5)``)
and flags as numpy's bool: a validator that accepts one stores the plain
Python ``int``, ``float`` or ``bool`` in its place, so that specs compare,
hash and save (YAML, JSON) exactly as if the plain value had been given.
Booleans are never numbers here.
"""

from __future__ import annotations

import difflib
import math
import numbers

import numpy as np


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


def _say(error: type, where: str, what: str, value, fix: str | None, name: str) -> Exception:
    """``error("<where> must be <what>, got <value>[; <fix>].")`` whose ``field`` is ``name``.

    ``fix`` may hold ``{name}``. The field is data for whoever locates the
    error (as :class:`~neurodelay.errors.ConfigError`'s ``field``), set on
    built-in errors too.
    """
    exc = error(f"{where} must be {what}, got {value!r}" + (f"; {fix.format(name=name)}" if fix else "") + ".")
    exc.field = name
    return exc


def _where(inst, attr, qualified: bool) -> str:
    return f"{type(inst).__name__}.{attr.name}" if qualified else attr.name


def flag(*, words: str = "True or False", fix: str | None = None, qualified: bool = False,
         error: type = TypeError):
    """Validator: the field is True or False (numpy's bool is stored as the plain one).

    The message reads ``"<field> must be <words>, got <value>[; <fix>]."``,
    where ``<field>`` is ``Class.field`` when ``qualified`` and ``fix`` may
    hold ``{name}`` (the field's name). ``error`` is the exception raised.
    """
    def check(inst, attr, value):
        _flag(_where(inst, attr, qualified), attr.name, value, words, fix, error)
        if type(value) is not bool:
            object.__setattr__(inst, attr.name, bool(value))
    return check


def check_flag(name: str, value, *, words: str = "True or False", fix: str | None = None,
               error: type = TypeError) -> bool:
    """Check a True-or-False argument (numpy's bool allowed); return it as a plain bool.

    The message reads ``"<name> must be <words>, got <value>[; <fix>]."``.
    """
    _flag(name, name, value, words, fix, error)
    return bool(value)


def _flag(where: str, name: str, value, words: str, fix, error) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise _say(error, where, words, value, fix, name)


def check_int(name: str, value, minimum: int, *, what: str | None = None, fix: str | None = None,
              error: type = ValueError) -> int:
    """Check an integer argument >= ``minimum`` (numpy integers allowed, bool refused); return it as int.

    The message reads ``"<name> must be <what>, got <value>[; <fix>]."``;
    ``what`` defaults to ``"an integer >= <minimum>"`` and ``fix`` may hold
    ``{name}``.
    """
    return _int_at_least(name, name, value, minimum, what, fix, error)


def _int_at_least(where: str, name: str, value, minimum: int, what, fix, error) -> int:
    if not is_int(value) or value < minimum:
        raise _say(error, where, what or f"an integer >= {minimum}", value, fix, name)
    return int(value)


def int_at_least(minimum: int, *, what: str | None = None, fix: str | None = None, qualified: bool = False,
                 error: type = ValueError, optional: bool = False):
    """Validator: the field is an integer >= ``minimum`` (None too when ``optional``), stored as a plain int.

    Messages as :func:`check_int`'s, naming ``Class.field`` when ``qualified``.
    """
    def check(inst, attr, value):
        if optional and value is None:
            return
        _int_at_least(_where(inst, attr, qualified), attr.name, value, minimum, what, fix, error)
        store_plain(inst, attr, value, int)
    return check


def finite_at_least(minimum: float, *, above: bool = False, what: str | None = None, fix: str | None = None,
                    qualified: bool = False, error: type = ValueError, optional: bool = False):
    """Validator: the field is a finite number >= ``minimum`` (> when ``above``), stored as a plain float.

    ``what`` defaults to ``"a finite number >= <minimum>"`` (``>`` when
    ``above``); None passes when ``optional``.
    """
    what = what or f"a finite number {'>' if above else '>='} {minimum:g}"

    def check(inst, attr, value):
        if optional and value is None:
            return
        if not is_real(value) or not math.isfinite(value) or value < minimum or (above and value == minimum):
            raise _say(error, _where(inst, attr, qualified), what, value, fix, attr.name)
        store_plain(inst, attr, value, float)
    return check


def one_of(*options: str):
    """Validator: the field is one of ``options`` (the message lists them and suggests the closest)."""
    def check(inst, attr, value):
        if not isinstance(value, str) or value not in options:
            close = closest(value, options)
            fix = f"did you mean {attr.name}={close!r}?" if close else f"use e.g. {attr.name}={options[0]!r}."
            raise ValueError(f"{attr.name} must be one of {', '.join(map(repr, options))}, got {value!r}; {fix}")
    return check


def check_seed(seed, *, below_2_64: bool = False, error: type = ValueError) -> int:
    """Check a seed (an integer >= 0, below 2**64 when ``below_2_64``: torch's limit); return it as int."""
    if below_2_64:
        if not is_int(seed) or not 0 <= seed < 2**64:
            raise error(f"seed must be a non-negative integer, got {seed!r}; use one below 2**64, e.g. seed=0.")
        return int(seed)
    return check_int("seed", seed, 0, what="a non-negative integer", fix="use e.g. seed=0", error=error)


positive_int = int_at_least(1, what="a positive integer", fix="use e.g. {name}=4")


def in_unit_interval(inst, attr, value):
    if not is_real(value) or not (0.0 <= value <= 1.0):
        raise _say(ValueError, attr.name, "in [0, 1]", value, "0 uses only the drive, 1 only the prediction",
                   attr.name)
    store_plain(inst, attr, value, float)


def finite_float(inst, attr, value):
    if not is_real(value) or not math.isfinite(value):
        raise _say(ValueError, attr.name, "a finite number", value, None, attr.name)
    store_plain(inst, attr, value, float)


def image_size(inst, attr, value):
    if not is_int(value) or value < 16 or value % 16:
        raise _say(ValueError, attr.name, "a multiple of 16 (the backbone halves it four times)", value,
                   "use 32 or 64", attr.name)
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


def closest(word, options, *, cutoff: float = 0.6) -> str | None:
    """The option most like ``word`` (:func:`difflib.get_close_matches`, as text), or None when none is close."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word, options, *, form: str = "did you mean {!r}? ", otherwise: str = "",
                 cutoff: float = 0.6) -> str:
    """``form`` with the option closest to ``word``; when none is close, ``otherwise``.

    ``otherwise`` may hold ``{options}``, the options listed (``a, b``); with
    no options at all the result is ``""``.
    """
    close = closest(word, options, cutoff=cutoff)
    if close is not None:
        return form.format(close)
    return otherwise.format(options=", ".join(map(str, options))) if options else ""


def suggest(word, options, *, label: str = "Valid", cutoff: float = 0.5) -> str:
    """``"did you mean 'closest'? <label>: a, b."``: the closest option, if any, and every option listed."""
    options = [str(o) for o in options]
    hint = did_you_mean(word, options, cutoff=cutoff)
    return f"{hint}{label}: {', '.join(options)}." if options else hint
