"""docs/cluster.md's Python example runs as written on a sweep's sweep.nc."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from neurodelay.run import main

ROOT = Path(__file__).resolve().parents[2]


def test_cluster_md_sweep_nc_example_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("dask")  # open_dataset(..., chunks={}) needs it
    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "docs" / "cluster.md").read_text(), re.S | re.M)
    assert len(blocks) == 1
    # A small stand-in for studies/inertia_gamma_sweep.yaml, written where the example looks for it.
    study = {
        "name": "inertia_gamma_sweep", "seed": 0,
        "world": {"kind": "moving_circle", "size": 16, "n_frames": 4},
        "circuit": {"preset": "inertia", "n_latents": 2, "gamma": 0.5},
        "objective": {"reconstruction": "gaussian"},
        "train": {"steps": 1, "batch_size": 2},
        "evaluate": {"n_sequences": 4},
        "analyses": ["lag"],
        "sweep": {"circuit.gamma": [0.0, 0.5]},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    monkeypatch.chdir(tmp_path)
    assert main([str(path), "--out", "runs", "--quiet"]) == 0
    capsys.readouterr()
    scope: dict = {}
    exec(compile(blocks[0], "docs/cluster.md python block", "exec"), scope)  # noqa: S102 - the docs' own code
    ds = scope["ds"]
    assert ds["lag_ms"].dims == ("gamma",)  # one value per point, no sample dimension
    assert ds["z"].std("sample").mean("time").compute().dims == ("gamma", "latent")
