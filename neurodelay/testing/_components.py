"""The component contract as a battery of named checks: ``check_component`` and ``component_checks``.

They run the checks of ``_checks`` (:data:`CHECKS`, in that order) on a
component spec or class, with small inputs (2 samples, 6 steps, the shapes
``out_shape`` accepts), so a whole battery takes well under a second for the
vector components and about a second for a 16-pixel conv area on a CPU.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from ..components import AbstractComponent
from ._checks import _CHECKS, CHECKS, Shape, _Case

__all__ = ["CHECKS", "check_component", "component_checks"]


def _case(component, input_shapes, n_samples, n_steps, seed) -> _Case:
    if isinstance(component, type):
        if not issubclass(component, AbstractComponent):
            raise TypeError(f"component must be a component spec or class deriving from AbstractComponent, got "
                            f"the class {component.__name__}; subclass neurodelay.components.AbstractComponent.")
        try:
            component = component()
        except (TypeError, ValueError) as err:
            raise TypeError(f"check_component made {component.__name__}() with its defaults to check it, which "
                            f"failed ({err}); pass an instance instead, e.g. {component.__name__}(...).") from None
    elif not isinstance(component, AbstractComponent):
        raise TypeError(f"component must be a component spec or class deriving from AbstractComponent, got "
                        f"{type(component).__name__} {component!r}.")
    for arg, value, least in (("n_samples", n_samples, 1), ("n_steps", n_steps, 3), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            raise ValueError(f"{arg} must be an integer >= {least}, got {value!r}.")
    if input_shapes is not None:
        if not isinstance(input_shapes, Mapping) or set(input_shapes) != set(component.ports):
            raise ValueError(f"input_shapes must map each of the component's ports {component.ports} to a shape "
                             f"per sample and step, got {input_shapes!r}; e.g. {{'in': (3,)}}.")
        input_shapes = {p: tuple(s) for p, s in input_shapes.items()}
    return _Case(component, input_shapes, int(n_samples), int(n_steps), int(seed))


def component_checks(component, *, input_shapes: Mapping[str, Shape] | None = None, n_samples: int = 2,
                     n_steps: int = 6, seed: int = 0) -> list[tuple[str, Callable[[], None]]]:
    """The checks of :func:`check_component` as ``(name, check)`` pairs, each check a function of no arguments.

    For test frameworks that report each check on its own::

        @pytest.mark.parametrize("name, check", component_checks(Leaky()), ids=lambda v: v
                                 if isinstance(v, str) else "")
        def test_leaky(name, check):
            check()

    The arguments are those of :func:`check_component`.
    """
    case = _case(component, input_shapes, n_samples, n_steps, seed)
    return [(name, partial(fn, case)) for name, fn in _CHECKS.items()]


def check_component(component, *, input_shapes: Mapping[str, Shape] | None = None, n_samples: int = 2,
                    n_steps: int = 6, seed: int = 0, skip: Sequence[str] = ()) -> tuple[str, ...]:
    """Run the component contract's checks on a component; raise at the first that fails.

    Parameters
    ----------
    component : AbstractComponent or type
        A component spec, or its class (made with its defaults).
    input_shapes : dict or None
        Each port's input shape per sample and step, e.g. ``{"in": (4,)}``.
        None: the first of ``(3,)``, ``(n_latents,)`` and ``(in_channels,
        size, size)`` per port that ``out_shape`` accepts.
    n_samples, n_steps : int
        Sizes of the inputs the checks run on (n_steps >= 3).
    seed : int
        Seed of the inputs and of torch's generator while building (the
        global generator is restored afterwards).
    skip : sequence of str
        Names of checks (from :data:`CHECKS`) not to run.

    Returns
    -------
    tuple of str
        The names of the checks that ran (and passed).

    Raises
    ------
    AssertionError
        At the first check that fails, naming the component, the check and
        how to fix it.

    Notes
    -----
    The checks, in order (:data:`CHECKS`):

    ``frozen_attrs_spec``
        a frozen attrs class deriving from ``AbstractComponent`` (not a
        torch module), with a class attribute ``kind``, holding plain values;
    ``ports``
        distinct port names, ``required_ports()`` among them, input shapes
        that ``out_shape`` accepts, a finite ``valid_from``;
    ``spec_round_trip``
        the spec written as its study-file mapping, as YAML and as JSON
        text, and read back (``structure_component``), is equal;
    ``unknown_key_rejected``
        a mapping with a key the class does not have is refused at that key;
    ``builds``
        ``build()`` returns a fresh ``NodeModule`` and leaves the spec alone;
    ``output_shape_and_dtype``
        both paths give ``(sample, time, *out_shape)`` in the inputs' dtype
        (float32 and float64), extras with the same leading axes;
    ``no_in_place_changes``
        inputs are left as they were, and a step leaves earlier outputs alone;
    ``step_matches_sequence``
        ``forward_step`` run T times (passing the ports ``reads`` names, as
        a circuit's loop does) equals ``forward_sequence`` over T steps, in
        values and in the gradients of inputs and parameters; with every
        port valid from step 0 and with the ports valid from steps 1, 2, ...;
        float32 to rtol 1e-5, atol 1e-6, float64 to 1e-10 of the magnitude;
    ``finite_on_zero_input``
        zero inputs give no NaN or infinity;
    ``deterministic``
        two builds under one seed have equal parameters, and give equal
        outputs, drawing (``RunContext(sample=True)``) from equal generators;
    ``state_and_reset``
        a run gives the same numbers after a run on other inputs (state
        lives in ``init_state()`` and what ``forward_step`` returns);
    ``gradients``
        a loss on the outputs gives every trainable parameter a finite
        gradient (not all zero) and reaches the inputs;
    ``linear_taps``
        a component that declares ``linear_taps()`` computes that weighted
        sum of delayed inputs (from the longest lag on).
    """
    case = _case(component, input_shapes, n_samples, n_steps, seed)
    if isinstance(skip, str) or not all(isinstance(s, str) for s in skip):
        raise TypeError(f"skip must be a sequence of check names, got {skip!r}; e.g. skip=['linear_taps'].")
    unknown = [s for s in skip if s not in _CHECKS]
    if unknown:
        raise ValueError(f"skip names unknown checks {unknown}; the checks are {list(CHECKS)}.")
    ran = []
    for name, fn in _CHECKS.items():
        if name not in skip:
            fn(case)
            ran.append(name)
    return tuple(ran)

