"""``python -m neurodelay.run``: run a study file.

Usage::

    python -m neurodelay.run STUDY.yaml [--out DIR] [--set key.path=value ...]
                             [--device cpu|cuda] [--resume] [--dry-run] [--quiet]
                             [--executor NAME] [--detach] [--collect]

Output goes to ``DIR/<name>/`` (default DIR ``runs``): ``results.nc``,
``checkpoint.pt``, ``study.resolved.yaml``, ``figures/``, ``report.md``; a
sweep puts each point in a subfolder and adds ``sweep.nc``. ``STUDY`` may be
a Python script defining ``study()`` (see :func:`neurodelay.study.load_study`).

Exit status: 0 on success; 2 for an invalid study or invocation, a checkpoint
``--resume`` refuses, or an output folder another run or sweep holds (the
message on stderr, no traceback; nothing is written); 1 when a run (or any
sweep point) fails, a full disk or an unwritable folder included (said as
such, no traceback); 130 when interrupted by Ctrl-C, 143 by SIGTERM (during
training after the current step and a checkpoint there). See
docs/reliability.md for the whole contract.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
import warnings
from pathlib import Path

import torch

from ._util.files import output_error
from .circuit import world_shapes
from .errors import CheckpointError, ConfigError, FolderLockedError, TrainingError, TrainingInterrupted
from .executors import parse_executor
from .pipeline import AnalysisError, resolve_device, run_study
from .study import StudyError, expand, load_study, study_to_yaml
from .sweep import collect, run_sweep

__all__ = ["main"]


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, without breaking lines at hyphens (a path such as docs/study-schema.md stays whole)."""

    def _split_lines(self, text, width):
        text = self._whitespace_matcher.sub(" ", text).strip()
        return textwrap.wrap(text, width, break_on_hyphens=False)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m neurodelay.run", formatter_class=_HelpFormatter,
        description="Run a neurodelay study: train the circuit, record results.nc, figures and a report.")
    p.add_argument("study", help="study file: YAML, or a Python script defining study()")
    p.add_argument("--out", default="runs", metavar="DIR", help="output folder; the run goes to DIR/<name>/ "
                                                                 "(default: runs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", dest="overrides",
                   help="override a study value (VALUE read as YAML), e.g. --set train.steps=100; repeatable")
    p.add_argument("--device", choices=("cpu", "cuda"), help="run on this device (replaces the study's)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in the output folder; the study may differ from the one that "
                        "wrote it only outside training (name, device, evaluate, analyses, executor) "
                        "or in train.steps (to train longer), log_every and checkpoint_every; see "
                        "docs/study-schema.md#resuming")
    p.add_argument("--dry-run", action="store_true",
                   help="check the study, print it resolved and the circuit's schedule; run and write nothing")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--executor", metavar="NAME",
                   help="where sweep points run: local, processes:N, dask:ADDRESS, dask:local:N, slurm or "
                        "slurm:local (replaces the study's executor.name)")
    p.add_argument("--detach", action="store_true",
                   help="with the slurm or slurm:local executor: submit the points and return; combine later "
                        "with --collect")
    p.add_argument("--collect", action="store_true",
                   help="combine the sweep points that have results into sweep.nc and the report; run nothing")
    return p


def _error(text: str) -> int:
    print(f"error: {text}", file=sys.stderr)
    return 2


def _dry_run(study, out: Path) -> int:

    print("# resolved study")
    print(study_to_yaml(study).rstrip())
    print()
    print("# circuit")
    print(study.build_circuit().describe(world_shapes(study.world)))
    if study.sweep is not None:
        points = expand(study)
        print()
        print(f"# sweep: {len(points)} points")
        for p in points:
            print(f"  {out / p.name}")
    else:
        print()
        print(f"# output: {out}")
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one line, ``warning: ...`` (a neurodelay warning is addressed to the user, not a debugger)."""
    print(f"warning: {message}", file=sys.stderr if file is None else file, flush=True)


#: Room left in a path for what a run writes below its folder (a sweep point's folder, figures/...).
_PATH_ROOM = 400


def main(argv=None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    args = _parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(args)


def _main(args) -> int:
    if args.device == "cuda" and not torch.cuda.is_available():
        return _error("--device cuda: no CUDA device is available here (torch.cuda.is_available() is "
                      "False); use --device cpu.")
    script = Path(args.study).suffix == ".py"
    try:
        study = load_study(args.study, args.overrides, device=args.device)
        resolve_device(study.device)
    except (StudyError, ConfigError) as exc:
        return _error(str(exc))
    except Exception as exc:  # noqa: BLE001 - a Python study that raised
        if not script:  # a YAML study is read by neurodelay alone: whatever it holds, this is a bug
            return _error(f"internal error while loading {args.study} ({type(exc).__name__}: {exc}); this is a "
                          f"bug in neurodelay: please report it with the study file.")
        traceback.print_exc()
        return _error(f"the study script {args.study} raised an error (traceback above).")
    out = Path(args.out) / study.name
    for folder in (Path(args.out), out):
        if folder.exists() and not folder.is_dir():
            return _error(f"--out: {folder} is a file, not a folder; give another --out (the run writes "
                          f"{out}/).")
    longest = len(os.fsencode(os.path.abspath(out))) + _PATH_ROOM
    if longest > _path_max(Path(args.out)):
        return _error(f"--out: {out} is too long a path for this file system ({longest - _PATH_ROOM} bytes, and a "
                      f"run writes up to {_PATH_ROOM} more below it; at most {_path_max(Path(args.out))}); "
                      f"give a shorter --out.")
    if args.executor is not None:
        try:
            parse_executor(args.executor)
        except ConfigError as exc:
            return _error(f"--executor: {exc}")
    if (args.detach or args.collect or args.executor) and study.sweep is None:
        return _error("--executor, --detach and --collect apply to studies with a sweep section; "
                      "this study has none.")
    if args.dry_run:
        return _dry_run(study, out)
    try:
        if study.sweep is not None:
            if args.collect:
                outcome = collect(study, out, quiet=args.quiet)
            else:
                outcome = run_sweep(study, out, resume=args.resume, quiet=args.quiet, executor=args.executor,
                                    detach=args.detach)
                if args.detach:
                    return 0
            if outcome.failed:
                print(f"error: {len(outcome.failed)} of {len(outcome.points)} sweep points failed: "
                      + ", ".join(p.point.name for p in outcome.failed)
                      + f"; see {out / 'report.md'}", file=sys.stderr)
                return 1
            return 0
        run_study(study, out, resume=args.resume, quiet=args.quiet)
    except FolderLockedError as exc:
        return _error(str(exc))
    except CheckpointError as exc:
        return _error(f"cannot resume: {exc}")
    except ConfigError as exc:
        return _error(str(exc))
    except (TrainingError, AnalysisError) as exc:
        print(f"run failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        if isinstance(exc, TrainingInterrupted):
            again = ("rerun the same command: points with a checkpoint resume from it" if study.sweep is not None
                     else "rerun the same command with --resume to go on from there")
            print(f"{exc} ({again}.)", file=sys.stderr)
            return 143 if exc.signal_name == "SIGTERM" else 130
        again = ("rerun the same command: points with a checkpoint resume from their last one"
                 if study.sweep is not None else "rerun with --resume to continue from the last checkpoint")
        name = getattr(exc, "signal_name", "SIGINT")  # SweepTerminated: SIGTERM to a sweep's process
        print(f"interrupted ({name}); {again} in {out}.", file=sys.stderr)
        return 143 if name == "SIGTERM" else 130
    except Exception as exc:  # noqa: BLE001
        diagnosed = output_error(out, exc)  # a full disk, a read-only folder: said plainly, no traceback
        if diagnosed is None and isinstance(exc, OSError) and exc.filename is not None:
            print(f"run failed: {exc}", file=sys.stderr)
            return 1
        if diagnosed is None:
            traceback.print_exc()
            print(f"run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        kept = (" The last checkpoint written is kept: rerun with --resume to go on from it."
                if (out / "checkpoint.pt").exists() and study.sweep is None else "")
        print(f"run failed: {diagnosed}{kept}", file=sys.stderr)
        return 1
    return 0


def _path_max(folder: Path) -> int:
    """The longest path (bytes) the file system holding ``folder`` takes."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return int(os.pathconf(folder, "PC_PATH_MAX"))
    except (OSError, ValueError):
        return 4096


if __name__ == "__main__":
    sys.exit(main())
