"""Write the state_dict key lists of insightface's published backbones.

The lists committed in crates/nn/tests/fixtures/ (insightface_<name>.txt, one
"<key> <dtype> <shape>" line per tensor, in state_dict order) were made with

    python3 interop/pytorch/insightface_keys.py INSIGHTFACE_CLONE crates/nn/tests/fixtures

from a clone of https://github.com/deepinsight/insightface (the commit is
written into each file's first line). `crates/nn/tests/insightface.rs` checks
every key, dtype and shape of the checkpoints we write against them.
"""
import os
import subprocess
import sys

import torch


def main():
    clone, out_dir = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.join(clone, "recognition", "arcface_torch"))
    from backbones import get_model  # insightface's own definitions

    commit = subprocess.run(["git", "-C", clone, "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    for name, ours in (("mbf", "mobilefacenet"), ("r18", "iresnet18")):
        model = get_model(name, fp16=False, num_features=512)
        path = os.path.join(out_dir, f"insightface_{ours}.txt")
        with open(path, "w") as f:
            f.write(f"# insightface {commit} recognition/arcface_torch/backbones get_model('{name}', "
                    f"fp16=False, num_features=512).state_dict(); parameters {sum(p.numel() for p in model.parameters())}\n")
            for key, t in model.state_dict().items():
                dtype = str(t.dtype).replace("torch.", "")
                shape = ",".join(str(d) for d in t.shape)
                f.write(f"{key} {dtype} [{shape}]\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
