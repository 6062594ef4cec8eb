"""Compare two regularface checkpoints tensor by tensor: the same names, shapes
and counters, and every float tensor within `max|a - b| <= atol + rtol max|b|`
(`atol` for values that are zero up to rounding, e.g. the running means and
bias gradients of a BatchNorm that feeds another BatchNorm: about 1e-8). Prints one JSON line; exits non-zero on a
difference.

    python3 compare_checkpoints.py A B [--rtol 1e-4] [--atol 0] [--weights-only]

SphereFace and LeNet++ steps agree to about 2e-6 on every tensor. BatchNorm
networks are compared on their weights (`--weights-only`) with a looser rtol
(test_roundtrip.sh: 1e-2 for MobileFaceNet; 1.5e-3 measured): a PReLU input within rounding of
0 takes the other slope on one side, which moves that channel's gradient by up
to 1e-2 relative (PyTorch's own f32 step differs from its f64 step,
`one_step.py --double`, by 6e-3 on momentum buffers), and BatchNorm biases
start at 0 and stay small (PyTorch f32 against f64: 2e-4 on them).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from regularface_torch import checkpoint as ck  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--atol", type=float, default=0.0)
    ap.add_argument("--weights-only", action="store_true",
                    help="skip the optimiser state (optim.*): compare the model's tensors only")
    ap.add_argument("--metadata", nargs="*", default=["regularface.step", "regularface.lambda_iteration",
                                                       "regularface.exclusive_cache", "regularface.classes"])
    a = ap.parse_args()
    try:
        (ta, ma), (tb, mb) = ck.read(a.a, verify=False), ck.read(a.b, verify=False)
    except ck.CheckpointError as e:
        sys.exit(f"error: {e}")
    problems = []
    if set(ta) != set(tb):
        problems.append(f"names differ: only in A {sorted(set(ta) - set(tb))}, only in B {sorted(set(tb) - set(ta))}")
    worst, worst_name = 0.0, None
    for name in sorted(set(ta) & set(tb)):
        if a.weights_only and name.startswith("optim."):
            continue
        x, y = ta[name], tb[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            problems.append(f"{name}: {x.dtype} {list(x.shape)} against {y.dtype} {list(y.shape)}")
        elif not x.is_floating_point():
            if not bool((x == y).all()):
                problems.append(f"{name}: {x.item()} against {y.item()}")
        else:
            diff = (x.double() - y.double()).abs().max().item()
            scale = y.double().abs().max().item()
            if diff > a.atol and diff / scale > worst:
                worst, worst_name = diff / scale, name
            if not diff <= a.atol + a.rtol * scale:
                problems.append(f"{name}: differs by {diff:.3g} at scale {scale:.3g}")
    for key in a.metadata:
        if ma.get(key) != mb.get(key):
            problems.append(f"metadata {key}: {str(ma.get(key))[:80]!r} against {str(mb.get(key))[:80]!r}")
    print(json.dumps({"a": a.a, "b": a.b, "tensors": len(ta), "max_rel_diff_above_atol": worst, "worst": worst_name,
                      "rtol": a.rtol, "problems": problems[:20]}))
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
