"""Run an exported model with onnxruntime and compare with our features.

    python3 check_onnx.py MODEL.onnx IO.safetensors

`IO.safetensors` holds an `input` batch and regularface's `output` for it.
Checks the model with onnx's checker (when `onnx` is importable), runs it
with onnxruntime's CPU provider, and exits non-zero when the relative max
error exceeds 1e-4. Prints one JSON line. Called by tests/onnx_export.rs when
onnxruntime and safetensors are importable.
"""
import json
import sys

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file


def main():
    path, io_path = sys.argv[1], sys.argv[2]
    try:
        import onnx
        onnx.checker.check_model(onnx.load(path))
        checked = True
    except ImportError:
        checked = False
    io = load_file(io_path)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (out,) = session.run(["features"], {"input": io["input"].astype(np.float32)})
    want = io["output"]
    rel = float(np.abs(out - want).max() / np.abs(want).max())
    print(json.dumps({"model": path, "onnxruntime": ort.__version__, "onnx_checker": checked,
                      "shape": list(out.shape), "max_rel_error": rel}))
    if not rel < 1e-4:
        sys.exit(f"onnxruntime differs from regularface: relative max error {rel}")


if __name__ == "__main__":
    main()
