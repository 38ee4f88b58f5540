"""One battery over every component kind in COMPONENTS: ``neurodelay.testing.check_component``.

Each built-in kind (with small images for speed, and the variants with a
Gaussian latent or a learned horizon) runs every named check of the
component contract (``neurodelay.testing.CHECKS``: the study-schema round
trip through YAML and JSON, build, output shape and dtype, sequence and step
execution agree, determinism under a seed, state and reset, gradients,
linear taps, ...) as a test of its own, and so does the documented custom
component ``Leaky`` of ``studies/custom_circuit.py``. Each kind is also in
the study schema's documentation.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from custom_circuit import Leaky

from neurodelay.components import COMPONENTS, ConvEncoder, Extrapolator
from neurodelay.testing import CHECKS, check_component, component_checks

KINDS = sorted(COMPONENTS)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "study-schema.md"


def _small(kind: str):
    """The component with its defaults, with small images for speed."""
    cls = COMPONENTS[kind]
    return cls(size=16) if "size" in attrs.fields_dict(cls) else cls()


SPECS = {kind: _small(kind) for kind in KINDS}
SPECS["conv_encoder-gaussian"] = ConvEncoder(n_latents=3, size=16, gaussian=True)
SPECS["extrapolator-learn_alpha"] = Extrapolator(alpha=0.5, learn_alpha=True)
SPECS["leaky (studies/custom_circuit.py)"] = Leaky(rate=0.3)

CASES = [pytest.param(spec, name, check, id=f"{label}-{name}")
         for label, spec in SPECS.items() for name, check in component_checks(spec)]


@pytest.mark.parametrize("spec, name, check", CASES)
def test_component_contract(spec, name, check):
    check()


def test_every_builtin_kind_is_checked():
    assert {type(s).kind for s in SPECS.values()} >= set(COMPONENTS)


def test_the_documented_custom_component_passes_check_component():
    assert check_component(Leaky) == CHECKS
    assert check_component(Leaky(rate=1.0), n_samples=1, n_steps=3, seed=5) == CHECKS


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_documented(kind):
    assert f"`{kind}`" in DOCS.read_text(encoding="utf-8")
