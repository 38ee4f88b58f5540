"""presets: the named circuits check their arguments before computing with them."""

from __future__ import annotations

import pytest

import neurodelay as nd
from neurodelay.errors import CircuitError

NAN = float("nan")


def test_compensated_checks_dt_and_delay_before_dividing():
    with pytest.raises(CircuitError, match=r"dt_ms must be a positive number of ms, got 0"):
        nd.presets.compensated(dt_ms=0)
    for bad in ("10", None, NAN):
        with pytest.raises(CircuitError, match=r"input_delay_ms must be a finite number of ms >= 0.*got"):
            nd.presets.compensated(input_delay_ms=bad)
    with pytest.raises(CircuitError, match=r"horizon_steps must be a finite number of steps.*got '2'"):
        nd.presets.compensated(horizon_steps="2")
    assert nd.presets.compensated(input_delay_ms=20.0).nodes["z"].alpha == 2.0
