"""``python -m neurodelay.run`` on a Python study's own component: ``--set`` and a sweep of its field.

``studies/custom_circuit.py`` defines ``Leaky`` (kind ``leaky``), the node
``smooth``: ``y[0] = x[0]``, ``y[t] = y[t-1] + rate * (x[t] - y[t-1])``. Its
first latent arrives without delay, so the recorded traces show which
``rate`` a run used. Also: the ``--resume`` help says what a resume may change.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from neurodelay.training import checkpoint
from neurodelay.run import _parser, main

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "studies" / "custom_circuit.py"
RATE = "circuit.nodes.smooth.rate"
#: A run of a few seconds: 1 step, 2 sequences of 5 frames, no analyses.
TINY_SETS = ["--set", "train.steps=1", "--set", "train.batch_size=2", "--set", "evaluate.n_sequences=2",
             "--set", "world.n_frames=5", "--set", "analyses=[]"]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_with_set_of_a_custom_components_field(tmp_path, capsys):
    code, out, err = run_cli(capsys, SCRIPT, "--out", tmp_path, "--dry-run", "--set", f"{RATE}=0.3")
    assert code == 0, err
    assert "smooth: {kind: leaky, rate: 0.3}" in out
    code, _, err = run_cli(capsys, SCRIPT, "--out", tmp_path, "--dry-run", "--set", f"{RATE}=2")
    assert code == 2
    assert "$.circuit.nodes.smooth.rate: rate must be in (0, 1], got 2" in err
    code, _, err = run_cli(capsys, SCRIPT, "--out", tmp_path, "--dry-run", "--set", "circuit.nodes.smooth.rat=1")
    assert code == 2 and "did you mean 'rate'?" in err
    assert not any(tmp_path.iterdir())


def test_dry_run_of_a_sweep_of_a_custom_components_field(tmp_path, capsys):
    code, out, err = run_cli(capsys, SCRIPT, "--out", tmp_path, "--dry-run",
                             "--set", f"sweep={{{RATE}: [0.3, 0.7]}}")
    assert code == 0, err
    assert "# sweep: 2 points" in out and "rate=0.3" in out and "rate=0.7" in out
    code, _, err = run_cli(capsys, SCRIPT, "--out", tmp_path, "--dry-run", "--set", f"sweep={{{RATE}: [0.3, 1.5]}}")
    assert code == 2
    assert f"$.sweep[{RATE!r}]: the value 1.5" in err and "rate must be in (0, 1]" in err


def test_a_sweep_of_a_custom_components_field_runs_each_point_with_its_value(tmp_path, capsys):
    rates = (0.3, 1.0)
    code, _, err = run_cli(capsys, SCRIPT, "--out", tmp_path, "--quiet", *TINY_SETS,
                           "--set", f"sweep={{{RATE}: [{rates[0]}, {rates[1]}]}}")
    assert code == 0, err
    out = tmp_path / "custom-circuit"
    for rate in rates:
        point = out / f"rate={rate}"
        resolved = yaml.safe_load((point / "study.resolved.yaml").read_text(encoding="utf-8"))
        assert resolved["circuit"]["nodes"]["smooth"] == {"kind": "leaky", "rate": rate}
        assert resolved["sweep"] is None
        ds = xr.load_dataset(point / "results.nc")
        assert yaml.safe_load(ds.attrs["study"])["circuit"]["nodes"]["smooth"]["rate"] == rate
        # the run used it: latent 0 reaches smooth undelayed, so smooth follows the leaky recursion of rate
        x, y = ds["enc"].values[..., 0], ds["smooth"].values[..., 0]
        np.testing.assert_allclose(y[:, 0], x[:, 0], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(y[:, 1:], y[:, :-1] + rate * (x[:, 1:] - y[:, :-1]), rtol=1e-4, atol=1e-6)
    sweep = xr.load_dataset(out / "sweep.nc")
    assert sweep["rate"].values.tolist() == list(rates) and sweep["rate"].attrs["path"] == RATE


# ------------------------------------------------------------------ --resume help
def _resume_help() -> str:
    action, = [a for a in _parser()._actions if a.dest == "resume"]
    return action.help


def test_resume_help_says_what_a_resume_may_change():
    text = _resume_help()
    assert text.startswith("continue from the checkpoint in the output folder")
    outside = re.search(r"only outside training \(([^)]*)\)", text)
    assert outside, text
    assert [w.strip() for w in outside.group(1).split(",")] == [
        k for k in checkpoint.NOT_TRAINING if k != "sweep"]  # a single run has no sweep
    assert "train.steps (to train longer)" in text
    for key in getattr(checkpoint, "RESUMABLE_TRAIN", ("steps", "log_every", "checkpoint_every")):
        assert key in text
    assert "docs/study-schema.md#resuming" in text
    assert "\n## Resuming\n" in (ROOT / "docs" / "study-schema.md").read_text(encoding="utf-8")


def test_resume_help_keeps_the_docs_link_whole(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = _parser().format_help()
    assert "docs/study-schema.md#resuming" in text
    assert max(map(len, text.splitlines())) <= 80
