"""Ship a run's weights with the package: neurodelay/pretrained/NAME.pt (for ``train.init_from: package:NAME``).

    python -m neurodelay.run studies/pretrain_ae.yaml                       # the quickstart's start (seed 1)
    python studies/ship_pretrained.py runs/pretrain_ae/seed=1/checkpoint.pt quickstart_ae

Only the model's parameters and buffers are kept (no optimiser state), with
the study that trained them and its step, in a file that
``torch.load(weights_only=True)`` reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("name")
    args = p.parse_args(argv)
    from neurodelay.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    out = ROOT / "neurodelay" / "pretrained" / f"{args.name}.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {k: v.clone() for k, v in ckpt["model"].items()}, "step": int(ckpt["step"]),
                "study_text": str(ckpt["study_text"])}, out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, step {ckpt['step']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
