"""Shared test configuration.

Hypothesis profiles: ``ci`` (200 examples per property, no deadline) is the
default; ``dev`` (50 examples) is quicker while editing:
``pytest --hypothesis-profile=dev``.
"""

import os
import signal

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

torch.set_num_threads(min(2, torch.get_num_threads()))

# A suite started in the background by a non-interactive shell (`cmd &`, nohup) inherits SIGINT ignored, and
# Python then keeps it ignored, as do the processes it starts. Training rightly leaves an ignored SIGINT alone,
# so the tests of Ctrl-C would see none: give this process (and so its children) Python's default handler.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
