"""The Python examples of README.md and docs/python-api.md run as written."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), re.S | re.M)


def run_blocks(path: Path) -> dict:
    """Run every ```python block of ``path`` in order, in one namespace shared by the file's blocks."""
    blocks = python_blocks(path)
    assert blocks, f"{path.name} has no ```python block"
    scope: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{path.name} python block {i}", "exec"), scope)  # noqa: S102 - the docs' own code
    return scope


def test_readme_first_circuit_runs_as_written(capsys):
    scope = run_blocks(ROOT / "README.md")
    out = capsys.readouterr().out
    # The first circuit: its schedule is printed, and simulate gives every node's trace over (sample, time).
    assert "world.frames -> enc.in: 2 = 20.0 ms" in out  # "two steps of conduction delay"
    assert "pred -> z: steps through time" in out
    ds = scope["ds"]
    assert {"enc", "z", "pred", "dec", "frames", "factors"} <= set(ds.data_vars)
    assert ds["z"].dims == ("sample", "time", "latent") and ds.sizes["sample"] == 64 and ds.sizes["time"] == 10
    assert ds["enc"].attrs["first_valid_step"] == 2


def test_python_api_guide_runs_as_written(capsys, monkeypatch, tmp_path):
    from neurodelay import registry

    monkeypatch.chdir(ROOT)  # the guide reads studies/*.yaml and studies/custom_circuit.py
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its runs go to tempfile.mkdtemp()
    registered = registry.available()  # the built-in analyses registered first, so that they are restored
    try:
        scope = run_blocks(ROOT / "docs" / "python-api.md")
    finally:  # the guide registers an analysis: other tests must not run it
        registry.ANALYSES.clear()
        registry.ANALYSES.update(registered)
    out = capsys.readouterr().out
    assert str(scope["work"]).startswith(str(tmp_path))

    # 1. Worlds: shapes and factor names.
    episode = scope["episode"]
    assert tuple(episode.frames.shape) == (64, 8, 1, 32, 32) and tuple(episode.factors.shape) == (64, 8, 6)
    assert episode.factor_names[2:4] == ("circle_x", "circle_y")
    np.testing.assert_allclose(scope["probe"].factors[0, :, 2].numpy(), np.linspace(0.1, 0.8, 8), atol=1e-6)

    # 2. Circuits: the schedule printed, the errors raised, first valid steps.
    assert "world.frames -> enc.in: 2 = 20.0 ms" in out and "pred -> z: steps through time" in out
    assert "  pred: step 3 (30 ms), shape (4,)" in out
    assert "enc -> z.in: [0, 0.5, 1, 1.5] (learned)" in out
    assert "Nearest valid values: 10 or 20 ms" in out and "algebraic loop: the cycle b -> a -> b" in out
    module = scope["module"]
    assert module.plan.valid_from == {"world.frames": 0, "enc": 1, "z": 1, "pred": 2, "dec": 1}

    # 3. Running: the Dataset and the raw traces.
    ds = scope["ds"]
    assert ds["z"].dims == ("sample", "time", "latent") and ds["z"].attrs["first_valid_step"] == 1
    assert ds.attrs["dt_ms"] == 10.0 and ds["time"].values[-1] == 70.0
    assert {"enc_mu", "enc_logvar"} <= set(scope["drawn"])
    assert torch.allclose(scope["stepped"]["dec"], scope["traces"]["dec"], atol=1e-5)

    # 4. Training: logged steps, resume, learned delays within their bounds.
    assert scope["result"].steps.tolist() == [1, 2, 4] and scope["result"].final_step == 4
    assert scope["resumed"].steps.tolist() == [1, 2, 4, 6] and scope["resumed"].final_step == 6
    delays = scope["learned"].delays["1"]
    assert delays.shape == (3, 4) and np.all((delays >= 0) & (delays <= 30))
    assert set(scope["fit"].history) == {"supervise_enc", "total"}
    steps = scope["mine"].delays["1"].steps.detach()
    assert torch.all((steps >= 0) & (steps <= 3))

    # 5. Analyses: the made-up trace two steps late has a lag of 2 steps; the others have their shapes.
    assert float(scope["lag"]["lag_steps"]) == 2.0 and float(scope["lag"]["lag_ms"]) == 20.0
    assert float(scope["lag"]["position_error_px"]) < 0  # behind
    assert scope["scores"]["latent_lag_steps"].values.tolist() == [2.0, 2.0]
    assert scope["analysis"].matched_correlation_score(scope["corr"]) < 0.05
    assert dict(scope["fl"]["flash_lag_px"].sizes) == {"condition": 4, "speed": 3}
    assert scope["late"]["flash_lag_px"].attrs["read_offset_steps"] == 2
    assert scope["battery"]["flash_lag_battery_px"].dims == ("read_at", "condition", "speed")
    assert scope["analysis"].flash_lag_theory(scope["g"], "flash_terminated", flash_step=8) == 2.0
    assert scope["trav"]["traversal_images"].dims == ("latent", "traversal", "y", "x")

    # 6. Studies: a run folder, a custom component, a sweep of its field.
    run_dir = scope["run_dir"]
    assert {"results.nc", "checkpoint.pt", "report.md", "study.resolved.yaml"} <= {p.name for p in run_dir.iterdir()}
    assert scope["custom"].circuit.nodes["smooth"].rate == 0.3
    assert [(p.point.name, p.status) for p in scope["outcome"].points] == [("k=0.5", "ok"), ("k=2.0", "ok")]

    # 7. Results: the registered analysis was recorded, the sweep has its dimension, the reload matches.
    results, sweep = scope["results"], scope["sweep"]
    assert results["z_spread"].dims == ("latent",) and results.attrs["trained_steps"] == 1
    assert sweep["k"].values.tolist() == [0.5, 2.0] and sweep["gain"].dims[0] == "k"
    np.testing.assert_allclose(scope["again_ds"]["z"].values, results["z"].values, atol=1e-6)
