"""neurodelay._util.validators: the one home of the package's value checks and name suggestions.

Each check is written once there; the modules that validate use it (no copy of ``_flag``,
``positive_int``, ``is_bool``, seed checks or ``_suggest`` elsewhere), and their messages are
those the callers wrote before.
"""

from __future__ import annotations

import ast
from pathlib import Path

import attrs
import numpy as np
import pytest

from neurodelay import Edge
from neurodelay._util.validators import (check_flag, check_int, check_seed, closest, did_you_mean, finite_at_least,
                                         flag, int_at_least, suggest)
from neurodelay.components import Blend, ConvDecoder, ConvEncoder, Extrapolator
from neurodelay.errors import ConfigError
from neurodelay.study.spec import EvaluateSettings, ExecutorSettings, TrainSettings
from neurodelay.training.objectives import Objective, Supervision
from neurodelay.worlds import MovingCircle

PACKAGE = Path(__file__).resolve().parents[2] / "neurodelay"

#: Names of checks that live in neurodelay/_util/validators.py and nowhere else.
_ONCE = {"_flag", "is_bool", "positive_int", "_positive_int", "_train_positive_int", "_non_negative_int",
         "_train_non_negative_int", "_executor_non_negative_int", "_check_seed", "_suggest", "check_int"}


def test_no_module_defines_its_own_copy_of_a_shared_check():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "validators.py" and path.parent.name == "_util":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and node.name in _ONCE:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: def {node.name}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get_close_matches":
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: difflib.get_close_matches")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("make, error, message", [
    (lambda: ConvEncoder(gaussian=1), TypeError, "gaussian must be True or False, got 1; use e.g. gaussian=True."),
    (lambda: Extrapolator(learn_alpha="yes"), TypeError, "Extrapolator.learn_alpha must be true or false, got 'yes'."),
    (lambda: Edge("world.frames", "enc", fractional="no"), TypeError,
     "Edge.fractional must be True or False, got 'no'."),
    (lambda: MovingCircle(seed_compatible=1), ConfigError,
     "MovingCircle.seed_compatible must be true or false, got 1; use seed_compatible=True or False."),
    (lambda: MovingCircle(n_sequences=0), ConfigError,
     "MovingCircle.n_sequences must be a positive integer, got 0; the original uses 200000."),
    (lambda: MovingCircle(size=4), ConfigError,
     "MovingCircle.size must be an integer number of pixels >= 8, got 4; use e.g. size=32 (the original) or 64."),
    (lambda: MovingCircle(pixel_noise=-1.0), ConfigError,
     "MovingCircle.pixel_noise must be a finite number >= 0, got -1.0; use 0 to turn it off."),
    (lambda: TrainSettings(steps=-1), ValueError, "steps must be an integer >= 0, got -1; 0 only simulates."),
    (lambda: TrainSettings(lr=0.0), ValueError, "lr must be a finite number > 0, got 0.0."),
    (lambda: EvaluateSettings(seed=-1), ValueError, "seed must be an integer >= 0, got -1; use e.g. seed: 0."),
    (lambda: ExecutorSettings(mem_gb=-2), ValueError, "mem_gb must be an integer >= 0, got -2."),
])
def test_messages_are_the_callers(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert str(info.value) == message


def test_numpy_scalars_are_stored_plain_everywhere():
    """A flag given as numpy's bool, an integer as numpy's, is stored as the plain Python value."""
    assert type(Extrapolator(learn_alpha=np.True_).learn_alpha) is bool
    assert type(MovingCircle(seed_compatible=np.False_).seed_compatible) is bool
    settings = EvaluateSettings(n_sequences=np.int64(8), seed=np.uint32(3))
    assert type(settings.n_sequences) is int and type(settings.seed) is int
    assert EvaluateSettings(n_sequences=np.int64(8)) == EvaluateSettings(n_sequences=8)


def test_factories_and_argument_checks():
    @attrs.frozen
    class Spec:
        n: int = attrs.field(default=1, validator=int_at_least(2, fix="use e.g. {name}=3", qualified=True))
        x: float | None = attrs.field(default=None, validator=finite_at_least(1, above=True, optional=True))
        b: bool = attrs.field(default=False, validator=flag(error=ValueError))

    with pytest.raises(ValueError, match=r"^Spec\.n must be an integer >= 2, got 1; use e\.g\. n=3\.$"):
        Spec()
    with pytest.raises(ValueError, match=r"^x must be a finite number > 1, got 1\.$"):
        Spec(n=2, x=1)
    with pytest.raises(ValueError, match=r"^x must be a finite number > 1, got nan\.$"):
        Spec(n=2, x=float("nan"))
    with pytest.raises(ValueError, match=r"^b must be True or False, got 0\.$"):
        Spec(n=2, b=0)
    assert Spec(n=np.int16(2), x=np.float32(2.0)).n == 2
    assert check_int("k", np.int8(3), 1) == 3
    with pytest.raises(ValueError, match=r"^k must be an integer >= 1, got True\.$"):
        check_int("k", True, 1)
    assert check_flag("f", np.True_) is True
    with pytest.raises(TypeError, match=r"^f must be True or False, got 'no'\.$"):
        check_flag("f", "no")
    assert check_seed(2**70) == 2**70
    with pytest.raises(ValueError, match=r"use one below 2\*\*64"):
        check_seed(2**70, below_2_64=True)
    with pytest.raises(ConfigError, match=r"^seed must be a non-negative integer, got -1; use e\.g\. seed=0\.$"):
        check_seed(-1, error=ConfigError)


def test_suggestions():
    assert closest("stpes", ["steps", "lr"]) == "steps"
    assert closest("zzz", ["steps", "lr"]) is None
    assert did_you_mean("gama", ["gamma"]) == "did you mean 'gamma'? "
    assert did_you_mean("q", ["gamma"], form="; did you mean {!r}?", otherwise="; valid: {options}") \
        == "; valid: gamma"
    assert did_you_mean("q", [], otherwise="; valid: {options}") == ""
    assert suggest("stpes", ["steps", "lr"]) == "did you mean 'steps'? Valid: steps, lr."
    assert suggest("q", ["a"], label="valid kinds") == "valid kinds: a."


@pytest.mark.parametrize("make, field, kind", [
    (lambda: ConvEncoder(n_latents=np.int64(4)), "n_latents", int),
    (lambda: ConvDecoder(size=np.int32(32)), "size", int),
    (lambda: Blend(gamma=np.float32(0.5)), "gamma", float),
    (lambda: Extrapolator(alpha=np.float64(2.0)), "alpha", float),
    (lambda: TrainSettings(steps=np.int64(5)), "steps", int),
    (lambda: TrainSettings(lr=np.float32(0.5)), "lr", float),
    (lambda: Objective(beta=np.float32(1)), "beta", float),
    (lambda: Objective(score_from_step=np.int64(2)), "score_from_step", int),
    (lambda: Supervision("enc", "circle_x", offset_steps=np.int16(1)), "offset_steps", int),
])
def test_numpy_scalars_are_accepted_and_stored_plain(make, field, kind):
    spec = make()
    assert type(getattr(spec, field)) is kind


def test_bools_are_still_not_numbers():
    with pytest.raises(ValueError, match=r"n_latents must be a positive integer, got True"):
        ConvEncoder(n_latents=True)
    with pytest.raises(ValueError, match=r"steps must be an integer >= 0, got np.True_"):
        TrainSettings(steps=np.bool_(True))


@pytest.mark.parametrize("make, pattern", [
    (lambda: TrainSettings(optimizer="adam "),
     r"optimizer must be one of 'rmsprop', 'adam', got 'adam '; did you mean optimizer='adam'\?"),
    (lambda: TrainSettings(precision="float16"),
     r"precision must be one of 'float32', 'bfloat16', got 'float16'"),
    (lambda: Objective(reconstruction="mse"),
     r"reconstruction must be 'gaussian' \(squared error\), 'bernoulli' .* or None .*, got 'mse'"),
])
def test_choice_messages_name_field_options_and_value(make, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        make()
    assert "Attribute(" not in str(info.value)
