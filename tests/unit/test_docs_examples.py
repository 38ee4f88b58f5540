"""The Python examples of README.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), re.S | re.M)


def test_readme_first_circuit_runs_as_written(capsys):
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "README.md has no ```python block"
    for i, block in enumerate(blocks):
        scope: dict = {}
        exec(compile(block, f"README.md python block {i}", "exec"), scope)  # noqa: S102 - the docs' own code
    out = capsys.readouterr().out
    # The first circuit: its schedule is printed, and simulate gives every node's trace over (sample, time).
    assert "world.frames -> enc.in: 2 = 20.0 ms" in out  # "two steps of conduction delay"
    assert "pred -> z: steps through time" in out
    ds = scope["ds"]
    assert {"enc", "z", "pred", "dec", "frames", "factors"} <= set(ds.data_vars)
    assert ds["z"].dims == ("sample", "time", "latent") and ds.sizes["sample"] == 64 and ds.sizes["time"] == 10
    assert ds["enc"].attrs["first_valid_step"] == 2
