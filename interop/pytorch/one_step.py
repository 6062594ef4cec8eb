"""One training step of a regularface run in PyTorch, on a batch file written by
`regularface batch`, saved in regularface's format: the PyTorch half of the
"same maths on both sides" check (`regularface step` is the Rust half).

    python3 one_step.py --checkpoint C --batch B.safetensors --out C2 [--double]

`--double` runs the step in float64 (the result is stored as f32), the
reference that shows how far each f32 side is from exact arithmetic.
"""
import argparse
import os
import sys

import torch
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from regularface_torch import CheckpointError, FaceModel  # noqa: E402


def read_batch(path):
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
        images, labels = f.get_tensor("images"), f.get_tensor("labels")
    return int(meta["regularface.step"]), images, labels.round().long()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--double", action="store_true")
    a = ap.parse_args()
    model, opt, step, meta = FaceModel.from_checkpoint(a.checkpoint)
    batch_step, images, labels = read_batch(a.batch)
    if batch_step != step:
        sys.exit(f"{a.batch}: the batch is of step {batch_step}, the checkpoint {a.checkpoint} is at step {step}")
    if a.double:
        model.double()
        for state in opt.state.values():
            state["momentum_buffer"] = state["momentum_buffer"].double()
        images = images.double()
    terms, feats = model.train_step(opt, images, labels, step)
    model.move_centers(feats, labels)
    model.float()
    for state in opt.state.values():
        state["momentum_buffer"] = state["momentum_buffer"].float()
    model.save(a.out, opt, step + 1, meta)
    print(f"one step, loss {terms['total']:.6f}; wrote {a.out}")


if __name__ == "__main__":
    try:
        main()
    except CheckpointError as e:
        sys.exit(f"error: {e}")
