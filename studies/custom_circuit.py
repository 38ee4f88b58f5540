"""A study written in Python: a circuit built with the API, run by the same runner.

Run it like a YAML study (``--set``, ``--dry-run``, ``--resume`` all work)::

    python -m neurodelay.run studies/custom_circuit.py [--out runs] [--set train.steps=10]

or directly, ``python studies/custom_circuit.py [options]``.

The protocol: a Python study defines ``study()`` returning a
:class:`neurodelay.study.Study` (a module-level ``STUDY`` works too). The
runner treats it exactly like a loaded YAML file, so the output folder
(``results.nc``, figures, report) looks the same.

What YAML cannot say: this script defines its own component, ``Leaky`` (a
leaky integrator, ``y[t] = y[t-1] + rate * (x[t] - y[t-1])``), which the
study schema has no ``kind`` for, and builds the circuit's per-latent
conduction delays with a loop. Each latent of the encoder reaches the
integrator ``i * dt_ms`` later than latent 0, so the decoder sees a scene
whose parts are out of date by different amounts::

    world.frames --10 ms--> enc --[0, 10, 20, 30] ms--> smooth (Leaky) --> dec
"""

from __future__ import annotations

import sys
from typing import ClassVar

import attrs
import torch

from neurodelay import Circuit, ConvDecoder, ConvEncoder, Edge, MovingCircle
from neurodelay.components import AbstractComponent, NodeModule
from neurodelay.training.objectives import Objective
from neurodelay.study import EvaluateSettings, Study
from neurodelay.study import TrainSettings

DT_MS = 10.0
N_LATENTS = 4


def _rate(inst, attr, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"rate must be in (0, 1], got {value!r}; 1 passes the input through unchanged.")


@attrs.frozen
class Leaky(AbstractComponent):
    """Leaky integrator: ``y[0] = x[0]``, ``y[t] = y[t-1] + rate * (x[t] - y[t-1])``.

    Parameters
    ----------
    rate : float in (0, 1]
        Fraction of the gap to the input closed per step (time constant
        ``dt / rate`` for small rates).
    """

    kind: ClassVar[str] = "leaky"
    rate: float = attrs.field(default=0.5, validator=_rate)

    def out_shape(self, in_shapes):
        return in_shapes["in"]

    def build(self):
        return _LeakyModule(float(self.rate))


class _LeakyModule(NodeModule):
    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward_sequence(self, inputs, valid, ctx):
        x = inputs["in"]
        y, out = x[:, 0], [x[:, 0]]
        for t in range(1, x.shape[1]):
            y = y + self.rate * (x[:, t] - y)
            out.append(y)
        return torch.stack(out, dim=1), {}

    def forward_step(self, inputs, t, valid, state, ctx):
        x = inputs["in"]
        y = x if state is None else state + self.rate * (x - state)
        return y, {}, y


def circuit() -> Circuit:
    """The circuit: encoder, per-latent delays, leaky integrator, decoder."""
    per_latent_ms = [i * DT_MS for i in range(N_LATENTS)]  # latent i arrives i steps late
    return Circuit(
        nodes={
            "enc": ConvEncoder(n_latents=N_LATENTS, size=32),
            "smooth": Leaky(rate=0.5),
            "dec": ConvDecoder(n_latents=N_LATENTS, size=32),
        },
        edges=[
            Edge("world.frames", "enc", delay_ms=DT_MS),
            Edge("enc", "smooth", delay_ms=per_latent_ms),
            Edge("smooth", "dec"),
        ],
        dt_ms=DT_MS,
    )


def study() -> Study:
    """The study the runner runs."""
    return Study(
        name="custom-circuit",
        seed=0,
        dt_ms=DT_MS,
        world=MovingCircle(size=32, n_frames=10),
        circuit=circuit(),
        objective=Objective(reconstruction="gaussian"),
        train=TrainSettings(steps=40, batch_size=16, optimizer="adam", lr=1e-3, log_every=5),
        evaluate=EvaluateSettings(n_sequences=64),
    )


if __name__ == "__main__":
    from neurodelay.run import main

    sys.exit(main([__file__, *sys.argv[1:]]))
