"""studies/emergent_occlusion.yaml runs end to end: its first point, a few steps, on a small evaluation set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.pipeline.run import run_point
from neurodelay.study import expand, load_study

STUDY = Path(__file__).resolve().parents[2] / "studies" / "emergent_occlusion.yaml"


def test_the_first_point_trains_evaluates_and_reads_the_occlusion(tmp_path):
    study = load_study(STUDY, [("train.steps", 4), ("evaluate.n_sequences", 16)])
    points = expand(study)
    assert len(points) == 9 and study.world.occlusion_frames == 4 and study.world.occlusion_start == 6
    out = run_point(study, points[0], tmp_path / points[0].name, quiet=True)
    ds = xr.load_dataset(Path(out) / "results.nc")
    hidden = ds["factors"].sel(factor="circle_occluded").values
    np.testing.assert_array_equal(hidden.sum(1), 4)
    assert (hidden[:, 6:10] == 1).all()
    assert "alpha_learned" in ds and ds.sizes["steps_since_vanish"] == 4 and ds.sizes["steps_since_reappear"] == 6
    assert ds["occlusion_error_px"].attrs["n_events"] == 16  # every sequence, its start fixed at frame 6
    assert ds["occlusion_error_px"].attrs["readout_calibrated_on"] == "linear motion"
    assert (Path(out) / "figures" / "occlusion.png").exists()
