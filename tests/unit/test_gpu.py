"""Everything runs on CUDA: circuits, worlds, training, and opt-in bf16 autocast.

Every test here is marked ``gpu``; tests/conftest.py skips them when no CUDA
device is present. TF32 is switched off where CUDA results are compared with
CPU results, so that the tolerances are those of float32 arithmetic.
"""

import math

import pytest
import torch

from neurodelay import MovingCircle, build_seeded, presets
from neurodelay._util import perf as _perf
from neurodelay.components.base import RunContext
from neurodelay.training.objectives import Objective, compute_losses

pytestmark = pytest.mark.gpu

CUDA = "cuda"


@pytest.fixture
def no_tf32():
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _inertia(gaussian=False, gamma=0.75):
    world = MovingCircle()
    module = build_seeded(presets.inertia(gamma=gamma, gaussian=gaussian), world=world, seed=1)
    return world, module


def test_world_renders_on_cuda_like_on_cpu():
    world = MovingCircle()
    on_gpu = world.sample(8, seed=3, device=CUDA)
    on_cpu = world.sample(8, seed=3, device="cpu")
    assert on_gpu.frames.device.type == "cuda" and on_gpu.factors.device.type == "cuda"
    torch.testing.assert_close(on_gpu.factors.cpu(), on_cpu.factors)
    torch.testing.assert_close(on_gpu.frames.cpu(), on_cpu.frames, rtol=0, atol=1e-4)


def test_inertia_circuit_on_cuda_matches_cpu(no_tf32):
    world, module = _inertia(gaussian=True)
    ep = world.sample(6, seed=4)
    ctx = RunContext(sample=False)
    with torch.no_grad():
        want = module(ep.streams(), ctx=ctx)
        module.to(CUDA)
        got = module(ep.to(CUDA).streams(), ctx=ctx)
    assert set(got) == set(want)
    for k in want:
        assert got[k].device.type == "cuda"
        torch.testing.assert_close(got[k].cpu(), want[k], rtol=1e-4, atol=1e-5)


def test_latent_loop_auto_and_step_agree_on_cuda():
    from neurodelay import Blend, Circuit, Edge, Extrapolator

    circuit = Circuit(
        nodes={"z": Blend(gamma=0.5), "pred": Extrapolator(alpha=1.0)},
        edges=[Edge("world.factors", "z.drive", delay_ms=20.0), Edge("z", "pred", delay_ms=10.0),
               Edge("pred", "z.prediction")],
    )
    module = circuit.build(input_shapes={"world.frames": (1, 32, 32), "world.factors": (16,)}).to(CUDA)
    x = (0.02 * torch.randn(4, 300, 16, device=CUDA)).cumsum(1)
    auto = module({"world.factors": x}, mode="auto")
    step = module({"world.factors": x}, mode="step")
    for k in step:
        torch.testing.assert_close(auto[k], step[k], rtol=0, atol=1e-5)


def test_training_steps_on_cuda():
    from neurodelay.study import TrainSettings
    from neurodelay.training import train

    world, module = _inertia()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    settings = TrainSettings(steps=3, batch_size=8, log_every=1, checkpoint_every=3)
    result = train(module, world, Objective(score_from_step=2), settings, seed=0, device=CUDA, progress=False)
    assert next(module.parameters()).device.type == "cuda"
    assert len(result.history["total"]) == 3
    assert all(math.isfinite(v) for v in result.history["total"])
    changed = [k for k, v in module.state_dict().items() if not torch.equal(v.cpu(), before[k])]
    assert changed, "training changed no parameter"


def _loss(module, world, streams, objective, autocast):
    with _perf.autocast(CUDA, enabled=autocast):
        traces = module(streams, ctx=RunContext(sample=False))
        return compute_losses(objective, traces, streams, module, factor_names=world.factor_names)["total"]


#: bf16 keeps 8 bits of mantissa (about 3 significant digits): the summed loss
#: of a batch stays within 2 % of its float32 value.
BF16_RTOL = 0.02


@pytest.mark.parametrize("gaussian", [False, True])
def test_bf16_autocast_loss_within_tolerance_of_fp32(gaussian):
    world, module = _inertia(gaussian=gaussian)
    module.to(CUDA)
    objective = Objective(score_from_step=2, beta=1.0 if gaussian else 0.0)
    streams = world.sample(16, seed=5, device=CUDA).streams()
    with torch.no_grad():
        fp32 = _loss(module, world, streams, objective, autocast=False)
        bf16 = _loss(module, world, streams, objective, autocast=True)
    assert fp32.dtype == torch.float32
    assert abs(bf16.float().item() - fp32.item()) <= BF16_RTOL * abs(fp32.item())


def test_bf16_autocast_training_step_keeps_float32_parameters():
    world, module = _inertia()
    module.to(CUDA)
    opt = torch.optim.RMSprop(module.parameters(), lr=1e-4)
    streams = world.sample(8, seed=6, device=CUDA).streams()
    loss = _loss(module, world, streams, Objective(score_from_step=2), autocast=True)
    opt.zero_grad()
    loss.backward()
    opt.step()
    for p in module.parameters():
        assert p.dtype == torch.float32 and p.grad.dtype == torch.float32
        assert torch.isfinite(p.grad).all()
