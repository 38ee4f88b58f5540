"""The analysis registry, under the name analyses have always imported it by: see :mod:`neurodelay.registry`."""

from neurodelay.registry import ANALYSES, AnalysisContext, available, register

__all__ = ["ANALYSES", "register", "available", "AnalysisContext"]
