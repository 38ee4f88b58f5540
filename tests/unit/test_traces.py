"""analysis.traces: reading a node's trace and the circuit's latency to it."""

from __future__ import annotations

import pytest

from neurodelay.analysis.flash_lag import perception_latency
from tests.helpers import small_preset


@pytest.fixture(scope="module")
def inertia():
    return small_preset("inertia")


def test_perception_latency_rejects_unknown_auxiliary_names(inertia):
    with pytest.raises(KeyError, match=r"node='z_bogus' is not a node of the circuit \(enc, z, pred, dec\)"):
        perception_latency(inertia, "z_bogus")
    assert perception_latency(inertia, "enc_mu") == perception_latency(inertia, "enc")
