"""Tools for testing code built on neurodelay: the component contract, results comparison, strategies.

``check_component(component)`` runs the component contract's named checks
(:data:`CHECKS`) on a component of your own, as the built-in components'
contract tests do; ``component_checks`` gives them one by one (for
``pytest.mark.parametrize``). ``assert_results_equal(a, b)`` compares two
results Datasets or results.nc files and names the first difference.
``delayed_report(world, delay, alpha)`` gives results with a known answer (the
circle's exact position reported late and extrapolated) to calibrate an
analysis on.

Hypothesis strategies for worlds, circuits and signals are in
:mod:`neurodelay.testing.strategies`, which needs Hypothesis (the ``test``
extra). This module does not import it, so ``import neurodelay.testing`` works
without Hypothesis; import it as ``from neurodelay.testing import strategies``.

Nothing in the package imports this module: it sits above every other layer
(docs/architecture.md).
"""

from ._components import CHECKS, check_component, component_checks
from ._reports import delayed_report
from ._results import TIMING_ATTRS, assert_results_equal

__all__ = ["CHECKS", "check_component", "component_checks", "TIMING_ATTRS", "assert_results_equal",
           "delayed_report"]
