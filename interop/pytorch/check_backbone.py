"""Load a regularface checkpoint's backbone with regularface_torch (strict) and
compare its eval-mode output with ours.

    python3 check_backbone.py CHECKPOINT IO.safetensors

`IO.safetensors` holds an `input` batch and regularface's `output` for it.
Exits non-zero when the relative max error exceeds 1e-4; prints one JSON line.
Called by tests/pytorch_backbones.rs when torch is importable.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from regularface_torch import load_backbone  # noqa: E402


def main():
    model, cfg = load_backbone(sys.argv[1])
    io = load_file(sys.argv[2])
    with torch.no_grad():
        out = model(io["input"])
    rel = ((out - io["output"]).abs().max() / io["output"].abs().max()).item()
    print(json.dumps({"model": cfg["model"], "torch": torch.__version__, "strict_load": True,
                      "max_rel_error": rel}))
    if not rel < 1e-4:
        sys.exit(f"{cfg['model']}: PyTorch differs from regularface by {rel} (relative)")


if __name__ == "__main__":
    main()
