"""What became of a sweep's points: :class:`PointOutcome`, :class:`SweepOutcome`, and the line of a failed
point's error that says what went wrong (:func:`error_summary`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..study import Point

__all__ = ["PointOutcome", "SweepOutcome", "error_summary", "failed_outcome"]


@dataclass
class PointOutcome:
    """What happened to one point: ``status`` is ``ok``, ``skipped``, ``failed`` or ``missing``.

    ``error`` is one line saying what went wrong (:func:`error_summary`),
    ``detail`` the whole error as reported (traceback, a Slurm job's error
    stream), empty when ``error`` is all there is.
    """

    point: Point
    status: str
    error: str = ""
    seconds: float = 0.0
    detail: str = ""


def failed_outcome(point: Point, text: str, seconds: float = 0.0) -> PointOutcome:
    """The outcome of a point that failed: the error's one-line summary, and its full text where that says more."""
    summary = error_summary(text)
    return PointOutcome(point, "failed", summary, seconds, text.strip() if text.strip() != summary else "")


_TRACEBACK = "Traceback (most recent call last):"
_SEPARATOR = re.compile(r"^\s*[-=]{4,}\s*$")
_QUALIFIED = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*:)")  # "neurodelay.errors." of "neurodelay.errors.X: ..."


def error_summary(text: str, limit: int = 600) -> str:
    """The part of a failed point's error that says what went wrong, as one line.

    A one-line error is kept as it is. A longer one keeps its first line
    and the exception that ended the last Python traceback in it (its
    message on one line); without a traceback, the text after its last
    separator line (``-----``) when that is at most three lines, else its
    last line. A Slurm job's error (``FailedJobError: Job (task=0) failed
    during processing with trace:``, ``UncompletedJobError: Job 123 (task:
    0) with path ...``) is then followed by the exception, or the error
    stream, that says why. The result is cut to ``limit`` characters.

    Parameters
    ----------
    text : str
        The error as reported by the point's runner or executor.
    limit : int
        Most characters kept.
    """
    lines = [line.rstrip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    head = lines[0].strip()
    tail = _final_exception(lines[1:])
    if tail is None:  # the block after the last separator (a Slurm job's error stream) when short, else the last line
        cut = max([0] + [i + 1 for i, line in enumerate(lines) if _SEPARATOR.match(line)])
        block = [line.strip() for line in lines[max(cut, 1):]]
        tail = " ".join(block) if cut and len(block) <= 3 else (block[-1] if block else "")
    tail = _QUALIFIED.sub("", tail)
    if not tail or tail == head or tail in head:
        summary = head
    elif tail.startswith(head):  # the same exception, its message longer than the first line
        summary = tail
    else:
        summary = f"{head} ... {tail}"
    return summary if len(summary) <= limit else summary[:limit - 3] + "..."


def _final_exception(lines: list[str]) -> str | None:
    """The exception line(s), joined, that end the last Python traceback in ``lines``; None if there is none.

    After ``Traceback (most recent call last):`` come the frames (indented);
    the first line that is not indented starts the exception, whose message
    runs on to the end or to a separator line (``-----``).
    """
    starts = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    if not starts:
        return None
    block: list[str] = []
    for line in lines[starts[-1] + 1:]:
        if block and _SEPARATOR.match(line):
            break
        if block or not line[:1].isspace():
            block.append(line.strip())
    return " ".join(block) or None


@dataclass
class SweepOutcome:
    """The result of :func:`run_sweep`."""

    out_dir: Path
    points: list[PointOutcome] = field(default_factory=list)
    sweep_nc: Path | None = None

    @property
    def failed(self) -> list[PointOutcome]:
        """The points that failed."""
        return [p for p in self.points if p.status in ("failed", "missing")]
