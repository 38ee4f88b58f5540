"""Problems of a study, located in its file: :class:`StudyError`, and the text helpers of messages.

A problem is a ``(path, message)`` pair: the path in the file
(``$.circuit.edges[2].delay_ms``) and a message that names the value, the
constraint and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs
import yaml

from ..errors import ConfigError

__all__ = ["StudyError"]


class StudyError(ConfigError):
    """An invalid study: every problem with its path in the file.

    Attributes
    ----------
    source : str
        The file (or ``<study>``) the problems are in.
    problems : list of (str, str)
        ``(path, message)`` pairs; paths look like ``$.circuit.edges[2].delay_ms``.
    field : str or None
        The first problem's path from the study's root, without ``$.``
        (``train.steps``, ``circuit.edges[2].delay_ms``); None when it is
        about the file as a whole.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = list(problems)
        first = self.problems[0][0] if self.problems else ""
        field = first[2:] if first.startswith("$.") else first[1:] if first.startswith("$[") else None
        if len(self.problems) == 1:
            path, msg = self.problems[0]
            text = f"invalid study {source}: {path}: {msg}" if path else f"invalid study {source}: {msg}"
        else:
            lines = [f"invalid study {source} ({len(self.problems)} problems):"]
            lines += [f"  {p}: {m}" if p else f"  {m}" for p, m in self.problems]
            text = "\n".join(lines)
        super().__init__(text, field=field or None)


class _Problem(ValueError):
    """A structuring problem whose message is complete as it stands."""


def _text(value) -> str | None:
    """``value`` if it is text, else None: a name to look up in a registry (a list is no key of one)."""
    return value if isinstance(value, str) else None


def _freeze(value):
    """Lists (nested) to tuples, so that specs stay hashable and immutable."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value):
    """Tuples (nested) back to lists, for YAML and raw study dicts."""
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    return value


#: Words by which a message proposes a fix ("use e.g. ...", "did you mean ...", "set both").
_FIX_RE = re.compile(r"e\.g\.|did you mean|valid:|valid kinds|nearest valid|the original uses|\b(use|set|give|add|"
                     r"remove|write|swap|rename|raise|lower|choose|name one|connect)\b", re.I)


def _yaml_value(value) -> str:
    """``value`` as it is written in a study file (``null``, ``true``, ``0.0001``)."""
    return yaml.safe_dump(_thaw(value), default_flow_style=True, width=1000).split("\n")[0]


def _with_default_fix(exc: BaseException, field) -> BaseException:
    """``exc``, or a copy whose message proposes the field's default when it proposes no fix."""
    msg = _message(exc)
    default = field.default
    if _FIX_RE.search(msg) or default is attrs.NOTHING or isinstance(default, attrs.Factory):
        return exc
    return _Problem(f"{msg.rstrip('.')}; use e.g. {field.name}: {_yaml_value(default)} (the default).")


def _show(value) -> str:
    if isinstance(value, bool):
        return f"{value!r} (a boolean)"
    if isinstance(value, str):
        return f"{value!r} (text)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return f"a list {list(value)!r}"
    if value is None:
        return "null"
    return repr(value)



def _key_path(key) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    key = str(key)
    return f".{key}" if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) else f"[{key!r}]"


class _Located(ValueError):
    """Problems already located relative to the value being structured."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(m for _, m in problems))
        self.problems = problems


class _KindProblem(_Problem):
    """An unknown ``kind``: located at the ``kind`` key."""


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return "required, but missing."
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc) or type(exc).__name__

