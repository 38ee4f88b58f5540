"""Latent traversals through the decoder, factor sweeps through the circuit, and the run analyses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodelay import Circuit, Edge, Episode, MovingCircle, Relay, build_seeded, presets, simulate
from neurodelay.analysis.figures import plot_correlation, plot_sweeps, plot_traversals
from neurodelay.analysis.traversals import decoder_input, factor_sweeps, latent_traversals
from neurodelay.circuit import world_shapes
from neurodelay.components.base import RunContext
from tests.helpers import latent_named_run, small_preset
from tests.unit.test_lag import Select


WORLD = MovingCircle()
NAN = float("nan")


def factor_circuit(channels=None, delay_steps=1) -> Circuit:
    """z = the world's factors (or some of them), delayed."""
    if channels is None:
        return Circuit(nodes={"z": Relay()}, edges=[Edge("world.factors", "z", delay_ms=10.0 * delay_steps)])
    return Circuit(nodes={"sel": Select(channels=channels), "z": Relay()},
                   edges=[Edge("world.factors", "sel", delay_ms=10.0 * delay_steps), Edge("sel", "z")])


def test_sweeps_of_a_perfect_code_give_the_identity():
    module = build_seeded(factor_circuit(), input_shapes=world_shapes(WORLD))
    out = factor_sweeps(module, WORLD, "z")
    c = out["sweep_correlation"].values  # (6 latents, 4 factors); latents 4, 5 are the (zero) velocities
    np.testing.assert_allclose(c[:4], np.eye(4), atol=1e-6)
    np.testing.assert_array_equal(c[4:], 0.0)
    assert float(out["sweep_correlation_score"]) == pytest.approx(0.0, abs=1e-12)
    assert out["sweep_latents"].shape == (4, 16, 6)
    np.testing.assert_allclose(out["sweep_value"].values, np.linspace(0, 1, 16))
    # The sweep of circle_x holds the other positions at 0.5.
    np.testing.assert_allclose(out["sweep_latents"].values[2, :, [0, 1, 3]], 0.5, atol=1e-6)


def test_sweeps_score_a_swapped_code_by_the_original_mss_but_not_the_matched_one():
    module = build_seeded(factor_circuit(channels=(1, 0, 3, 2)), input_shapes=world_shapes(WORLD))
    out = factor_sweeps(module, WORLD, "z")
    # mss = mean((C - I)^2) with C a permutation swapping pairs: 8 wrong entries out of 16.
    assert float(out["sweep_correlation_score"]) == pytest.approx(8 / 16, abs=1e-9)
    assert float(out["sweep_matched_correlation_score"]) == pytest.approx(0.0, abs=1e-9)


def test_latent_traversals_decode_one_latent_at_a_time(tmp_path):
    module = build_seeded(presets.autoencoder(n_latents=3), input_shapes=world_shapes(WORLD), seed=4)
    assert decoder_input(module, "dec") == "z"
    z = np.random.default_rng(0).normal(size=(200, 3))
    out = latent_traversals(module, "dec", z, n_steps=5)
    images = out["traversal_images"].values
    assert images.shape == (3, 5, 32, 32)
    assert images.min() >= 0.0 and images.max() <= 1.0
    values = out["traversal_value"].values
    np.testing.assert_allclose(values[:, 0], np.quantile(z, 0.01, axis=0))
    np.testing.assert_allclose(values[:, -1], np.quantile(z, 0.99, axis=0))
    # Image (latent 1, step 3) is the decoder on the mean with latent 1 replaced.
    probe = z.mean(axis=0)
    probe[1] = values[1, 3]
    with torch.no_grad():
        want = module.nodes["dec"].frame(torch.tensor(probe[None], dtype=torch.float32), RunContext())[0]
    np.testing.assert_allclose(images[1, 3], want[0, 0].numpy(), atol=1e-6)
    path = tmp_path / "traversals.png"
    plot_traversals(out).savefig(path, dpi=60)
    assert path.stat().st_size > 1000


def test_decoder_input_needs_a_memoryless_decoder():
    module = build_seeded(presets.inertia(n_latents=2), input_shapes=world_shapes(WORLD))
    assert decoder_input(module, "dec") == "z"
    with pytest.raises(ValueError, match="exactly one input"):
        decoder_input(module, "z")  # a blend has two inputs
    with pytest.raises(KeyError):
        decoder_input(module, "nope")


def test_figures_of_sweeps_and_correlation(tmp_path):
    module = build_seeded(factor_circuit(), input_shapes=world_shapes(WORLD))
    out = factor_sweeps(module, WORLD, "z")
    plot_sweeps(out).savefig(tmp_path / "sweeps.png", dpi=60)
    plot_correlation(out["sweep_correlation"]).savefig(tmp_path / "corr.png", dpi=60)
    assert (tmp_path / "sweeps.png").stat().st_size > 1000 and (tmp_path / "corr.png").stat().st_size > 1000


class _Context:
    """An AnalysisContext that records figures without rendering them (the figures are tested above)."""

    def __init__(self, **kw):
        from neurodelay.registry import AnalysisContext

        self._ctx = AnalysisContext(**kw)
        self.figures = []

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def save_figure(self, fig, name, caption=""):
        path = self._ctx.figures_dir / f"{name}.png"
        self.figures.append((path, caption))
        return path


def test_registered_analyses_run_on_an_inertia_circuit(tmp_path):
    from neurodelay.registry import available
    from neurodelay.simulation import simulate

    analyses = available()
    names = ("disentanglement", "lag", "flash_lag", "regions", "traversals")
    assert set(names) <= set(analyses)
    world = MovingCircle(n_frames=10)
    circuit = presets.inertia(n_latents=4, gamma=0.5, alpha=1.0)
    module = build_seeded(circuit, input_shapes=world_shapes(world), seed=0)
    ds = simulate(module, world.sample(24, seed=0))
    ds["reconstruction"] = ds["dec"].copy()
    ds["reconstruction"].attrs.update(node="dec", target_offset_steps=0)
    ctx = _Context(study=None, circuit=circuit, module=module, world=world, device="cpu", out_dir=tmp_path)
    merged = ds
    for name in names:
        extra = analyses[name](merged, ctx)
        assert extra is not None, name
        assert not set(extra.data_vars) & set(merged.data_vars), name
        merged = merged.merge(extra, compat="no_conflicts", join="outer", combine_attrs="override")
    for var in ("correlation", "mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap",
                "lag_steps", "lag_ms", "flash_lag_px", "region_mse", "traversal_images", "sweep_correlation"):
        assert var in merged, var
        assert {"units", "long_name"} <= set(merged[var].attrs) or var == "traversal_images", var
    assert merged["correlation"].dims == ("latent", "factor")
    assert merged["region_mse"].dims == ("region",)
    assert set(merged["flash_lag_px"].dims) == {"condition", "speed"}
    assert {p.name for p, _ in ctx.figures} == {"correlation.png", "lag.png", "flash_lag.png", "regions.png",
                                                "traversals.png", "factor_sweeps.png"}
    assert all(caption for _, caption in ctx.figures)
    merged.to_netcdf(tmp_path / "results.nc", engine="netcdf4")


WORLD_20 = MovingCircle(n_frames=20)


def test_latent_traversals_reject_non_numeric_latents():
    module = build_seeded(presets.autoencoder(n_latents=3), input_shapes=world_shapes(WORLD_20), seed=0)
    with pytest.raises(ValueError, match=r"latents must be an array of numbers of shape \(n, M\)"):
        latent_traversals(module, "dec", [[0.0, 1.0, 2.0], [1.0]])


def test_factor_sweeps_reject_a_repeated_factor():
    module = build_seeded(factor_circuit(), input_shapes=world_shapes(WORLD_20))
    with pytest.raises(ValueError, match=r"factors must not repeat a name"):
        factor_sweeps(module, WORLD_20, "z", factors=["circle_x", "circle_x"])


@pytest.fixture(scope="module")
def latent_named():
    return latent_named_run()


def test_factor_sweeps_reads_a_renamed_trace_by_node_or_variable(latent_named):
    world, module, _ = latent_named
    by_node = factor_sweeps(module, world, "latent", n_steps=3)  # was: KeyError, not a trace
    by_var = factor_sweeps(module, world, "node_latent", n_steps=3)  # was: KeyError, not a node
    assert by_node["sweep_latents"].shape == (4, 3, 2)
    np.testing.assert_array_equal(by_node["sweep_latents"].values, by_var["sweep_latents"].values)
    # The representation read is the node's own trace at the last step of each static sequence.
    f = torch.zeros(1, 1, world.n_factors)
    f[..., :4] = 0.5
    f[0, 0, 0] = 0.0  # blob_x at the first sweep value, the other positions at 0.5
    ep = Episode(world.render(f).expand(-1, 3, -1, -1, -1).contiguous(), f.expand(-1, 3, -1).contiguous(),
                    world.factor_names)
    direct = simulate(module, ep)["node_latent"].values[0, -1]
    np.testing.assert_allclose(by_node["sweep_latents"].values[0, 0], direct, rtol=0, atol=1e-6)


def _relay_module(world):
    circuit = Circuit(nodes={"z": Relay()}, edges=[Edge("world.factors", "z")])
    return build_seeded(circuit, world=world)


def test_factor_sweeps_single_factor_name_and_finite_others():
    world = MovingCircle(n_frames=3)
    module = _relay_module(world)
    one = factor_sweeps(module, world, "z", n_steps=3, factors="circle_x")
    listed = factor_sweeps(module, world, "z", n_steps=3, factors=["circle_x"])
    assert list(one["sweep_factor"].values) == ["circle_x"]
    np.testing.assert_array_equal(one["sweep_latents"].values, listed["sweep_latents"].values)
    with pytest.raises(ValueError, match=r"others must be a finite number .* got nan"):
        factor_sweeps(module, world, "z", n_steps=3, others=NAN)


@pytest.fixture(scope="module")
def inertia():
    return small_preset("inertia")


@pytest.fixture(scope="module")
def autoencoder():
    return small_preset("autoencoder")


def test_latent_traversals_reject_a_node_that_is_not_a_decoder(inertia, autoencoder):
    z = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(KeyError, match=r"recon_node='decx' is not a node \(enc, z, pred, dec\)"):
        latent_traversals(inertia, "decx", z, n_steps=2)
    with pytest.raises(ValueError, match=r"node 'enc' must have exactly one input from a node.*world.frames"):
        latent_traversals(inertia, "enc", z, n_steps=2)
    with pytest.raises(ValueError, match=r"node 'z' must have exactly one input from a node.*'enc', 'pred'"):
        latent_traversals(inertia, "z", z, n_steps=2)  # a Blend
    with pytest.raises(ValueError, match=r"node 'z' outputs shape \(2,\) per step, not a one-channel image"):
        latent_traversals(autoencoder, "z", z, n_steps=2)  # a Relay: memoryless, but no image


def test_latent_traversals_check_the_latents_and_quantiles(inertia):
    z = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=r"latents must have the width of the decoder's input: 'dec' decodes "
                                         r"'z' of shape \(2,\).*got latents of shape \(5, 3\)"):
        latent_traversals(inertia, "dec", np.zeros((5, 3)), n_steps=2)
    with pytest.raises(ValueError, match=r"latents must contain only finite values; found 1 NaN .*row 4, column 1"):
        latent_traversals(inertia, "dec", np.where(np.arange(20).reshape(10, 2) == 9, NAN, z), n_steps=2)
    with pytest.raises(ValueError, match=r"quantiles must be a pair \(lo, hi\).*got \(0.1, 0.5, 0.9\)"):
        latent_traversals(inertia, "dec", z, n_steps=2, quantiles=(0.1, 0.5, 0.9))
    assert latent_traversals(inertia, "dec", z, n_steps=2)["traversal_images"].shape == (2, 2, 32, 32)
