"""Check that regularface_torch.data reads a run's data as regularface does:
the images and labels of a batch file written by `regularface batch` (which
names the images it drew and which it mirrored) against the same images read
and preprocessed here. Prints one JSON line; exits non-zero on a difference.

    python3 check_data.py --checkpoint C --batch B [--data DIR | --lfw DIR | --rec DIR] [--max-mean-diff 0]

Labels must be equal. Pixels (on the 0..255 scale) must be equal for formats
both sides decode exactly (PGM/PPM, MNIST); JPEG decoders and resampling
filters differ by a few levels, so LFW is checked with a mean-difference bound.
"""
import argparse
import json
import os
import sys

import torch
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from regularface_torch import checkpoint as ck  # noqa: E402
from regularface_torch.data import normalise, open_training_set  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--max-mean-diff", type=float, default=0.0)
    ap.add_argument("--max-diff", type=float, default=0.0)
    a = ap.parse_args()
    _, meta = ck.read(a.checkpoint, verify=False)
    spec, chw = json.loads(meta["regularface.data"]), ck.config_of(meta)["input"]
    with safe_open(a.batch, "pt") as f:
        bm = f.metadata()
        images, labels = f.get_tensor("images"), f.get_tensor("labels").round().long()
    indices, flips = json.loads(bm["regularface.indices"]), json.loads(bm["regularface.flips"])
    dataset = open_training_set(spec, chw)
    ours, our_labels = [], []
    for i, flip in zip(indices, flips):
        img, label = dataset[i]
        img = normalise(img)
        ours.append(torch.flip(img, dims=[2]) if flip else img)
        our_labels.append(label)
    diff = (torch.stack(ours) - images).abs() * 128.0
    report = {"source": spec["kind"], "images": len(indices), "classes": dataset.classes,
              "labels_equal": our_labels == labels.tolist(), "max_diff": diff.max().item(),
              "mean_diff": diff.mean().item()}
    print(json.dumps(report))
    if not (report["labels_equal"] and report["max_diff"] <= a.max_diff and report["mean_diff"] <= a.max_mean_diff):
        sys.exit(f"the data read here differs from regularface's: {report}")


if __name__ == "__main__":
    main()
