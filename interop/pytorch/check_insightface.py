"""Load a backbone checkpoint we wrote into insightface's own PyTorch class
(strict), compare outputs, and write one back for us to load.

    python3 check_insightface.py --insightface CLONE --model mbf|r18|r34|r50|r100 \
        --checkpoint ours.safetensors --io ours_io.safetensors --out-dir DIR

`ours.safetensors` holds the backbone's state_dict as regularface writes it;
`ours_io.safetensors` an `input` batch and our eval-mode `output` for it.
The script loads the state with `load_state_dict(strict=True)` into
insightface's `get_model(name, fp16=False, num_features=512)`, checks the
eval-mode outputs agree (relative max error < 1e-4), then runs one training
step's forward (moving the BatchNorm statistics and `num_batches_tracked`),
and writes its state_dict (`DIR/back.safetensors`) and its new eval-mode
output for the same input (`DIR/back_io.safetensors`). Prints one JSON line.
Called by crates/nn/tests/insightface.rs when torch and a clone are present.
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--insightface", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--io", required=True)
    p.add_argument("--out-dir", required=True)
    a = p.parse_args()
    sys.path.insert(0, os.path.join(a.insightface, "recognition", "arcface_torch"))
    from backbones import get_model

    torch.manual_seed(0)
    model = get_model(a.model, fp16=False, num_features=512)
    model.load_state_dict(load_file(a.checkpoint), strict=True)
    io = load_file(a.io)
    model.eval()
    with torch.no_grad():
        out = model(io["input"])
    rel = ((out - io["output"]).abs().max() / io["output"].abs().max()).item()
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 112, 112, generator=torch.Generator().manual_seed(1)))
    model.eval()
    with torch.no_grad():
        back_out = model(io["input"])
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(a.out_dir, "back.safetensors"))
    save_file({"output": back_out.contiguous()}, os.path.join(a.out_dir, "back_io.safetensors"))
    print(json.dumps({"model": a.model, "torch": torch.__version__, "strict_load": True,
                      "max_rel_error": rel, "tensors": len(state)}))
    if not rel < 1e-4:
        sys.exit(f"outputs differ: relative max error {rel}")


if __name__ == "__main__":
    main()
