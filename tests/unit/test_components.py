"""components: what a node module gets from NodeModule (base), and DelayLine's argument checks (delays)."""

from __future__ import annotations

import pytest
import torch

from neurodelay.components import NodeModule, RunContext
from neurodelay.components.delays import DelayLine


class _RunningSum(NodeModule):
    """Defines only forward_step: a running sum, with its double as an extra."""

    def forward_step(self, inputs, t, valid, state, ctx):
        y = inputs["in"] if state is None else state + inputs["in"]
        return y, {"twice": 2 * y}, y


class _Gate(NodeModule):
    """Two ports; counts its steps in its state, from init_state()."""

    def init_state(self):
        return 0

    def forward_step(self, inputs, t, valid, state, ctx):
        assert t == state
        return inputs["a"] * inputs["b"] + t, {}, state + 1


def test_a_module_with_only_a_step_function_runs_whole_sequences_by_stepping():
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    module = _RunningSum()
    out, extras = module.forward_sequence({"in": x}, {"in": 0}, RunContext())
    state, steps = module.init_state(), []
    for t in range(5):
        y, _, state = module.forward_step({"in": x[:, t]}, t, {"in": 0}, state, RunContext())
        steps.append(y)
    assert torch.equal(out, torch.stack(steps, dim=1))
    torch.testing.assert_close(out, x.cumsum(1))
    assert extras.keys() == {"twice"} and torch.equal(extras["twice"], 2 * out)


def test_the_default_sequence_function_passes_every_port_and_starts_from_init_state():
    a, b = torch.rand(3, 4, 2), torch.rand(3, 4, 2)
    out, extras = _Gate().forward_sequence({"a": a, "b": b}, {"a": 0, "b": 0}, RunContext())
    assert extras == {}
    assert torch.equal(out, a * b + torch.arange(4.0).view(1, 4, 1))


def test_the_default_sequence_function_keeps_gradients():
    x = torch.randn(2, 4, 1, requires_grad=True)
    out, _ = _RunningSum().forward_sequence({"in": x}, {"in": 0}, RunContext())
    out.sum().backward()
    assert torch.equal(x.grad[0, :, 0], torch.tensor([4.0, 3.0, 2.0, 1.0]))


def test_delay_line_checks_its_arguments():
    """A NaN or negative delay failed deep in torch (or read the future); bounds were not checked."""
    for steps in (float("nan"), -1.0, [1.0, -2.0]):
        with pytest.raises(ValueError, match=r"DelayLine: steps must be finite and >= 0"):
            DelayLine(steps)
    with pytest.raises(ValueError, match=r"DelayLine: steps must be one delay or one per channel"):
        DelayLine([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"initial steps 2\.0 must lie in \[min_steps, max_steps\] = \[3, 4\]"):
        DelayLine(2.0, learnable=True, min_steps=3.0, max_steps=4.0)
    with pytest.raises(ValueError, match=r"finite bounds 0 <= min_steps <= max_steps"):
        DelayLine(2.0, learnable=True, min_steps=3.0, max_steps=1.0)
