"""The versions a run records: neurodelay's (from its installed metadata) and torch's."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import torch

__all__ = ["package_version", "versions"]


def package_version() -> str:
    """neurodelay's version, ``0+unknown`` when it runs from a source tree that is not installed."""
    try:
        return version("neurodelay")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def versions() -> tuple[str, str]:
    """(neurodelay's version, torch's version)."""
    return package_version(), torch.__version__
