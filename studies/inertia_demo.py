"""Simulate the representational-inertia circuit (untrained) on moving circles.

Builds the circuit from the generic parts, runs it on a batch of moving
circles and saves a figure of frames and latents over time to
``runs/inertia_demo/``. The trained version is ``studies/quickstart.yaml``.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import neurodelay as nd
from neurodelay.record import write_netcdf


def main(out: Path = Path("runs/inertia_demo")) -> None:
    world = nd.MovingCircle(size=32, n_frames=10)
    circuit = nd.presets.inertia(n_latents=4, gamma=0.5, alpha=1.0, input_delay_ms=10)
    print(circuit.describe({"world.frames": world.frame_shape, "world.factors": (world.n_factors,)}))
    ds = nd.simulate(circuit, world.sample(16, seed=0), seed=0)
    write_netcdf(ds, out / "results.nc")
    fig, axes = plt.subplots(2, 10, figsize=(12, 3.2), gridspec_kw={"height_ratios": [1, 1]})
    for t in range(10):
        axes[0, t].imshow(ds.frames[0, t], cmap="gray", vmin=0, vmax=1)
        axes[0, t].set_title(f"{float(ds.time[t]):g} ms", fontsize=8)
        axes[0, t].axis("off")
        axes[1, t].imshow(ds.dec[0, t], cmap="gray", vmin=0, vmax=1)
        axes[1, t].axis("off")
    axes[0, 0].text(-8, 16, "frames", rotation=90, va="center", ha="right")
    axes[1, 0].text(-8, 16, "decoded", rotation=90, va="center", ha="right")
    fig.suptitle("untrained inertia circuit: world and decoded z (sample 0)")
    fig.savefig(out / "frames.png", dpi=100, bbox_inches="tight")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i in range(ds.sizes["latent"]):
        ax.plot(ds.time, ds.z[0, :, i], marker="o", label=f"z[{i}]")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("latent value (a.u.)")
    ax.set_title("latents over time (sample 0)")
    ax.legend(fontsize=8)
    fig.savefig(out / "latents.png", dpi=100, bbox_inches="tight")
    print(f"wrote {out}/results.nc, frames.png, latents.png")


if __name__ == "__main__":
    main()
