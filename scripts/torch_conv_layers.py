#!/usr/bin/env python3
"""PyTorch's side of `cargo run --release -p tensor --example bench`'s convolution table:
GFLOP/s of SphereFace-20's 3x3 stride-1 convolutions (batch 32, 2 threads), forward and
backward (input and weight gradients together), so the two can be compared per layer.

    OMP_NUM_THREADS=2 python3 scripts/torch_conv_layers.py     (needs `pip install torch`)
"""
import time

import torch

torch.set_num_threads(2)
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 32, median of 5")
print(f"{'layer':<16} {'forward':>10} {'backward':>10}   (GFLOP/s)")
for c, h, w in [(64, 56, 48), (128, 28, 24), (256, 14, 12), (512, 7, 6)]:
    x = torch.randn(32, c, h, w, requires_grad=True)
    conv = torch.nn.Conv2d(c, c, 3, 1, 1)
    flop = 2 * 9 * c * c * h * w * 32
    gy = torch.randn(32, c, h, w)

    def median(f):
        f()
        f()
        t = []
        for _ in range(5):
            s = time.perf_counter()
            f()
            t.append(time.perf_counter() - s)
        return sorted(t)[2]

    fwd = median(lambda: conv(x))

    def step():
        x.grad = None
        conv.zero_grad()
        conv(x).backward(gy)

    bwd = median(step) - fwd
    print(f"{c}ch {h}x{w:<8} {flop / fwd / 1e9:>10.1f} {2 * flop / bwd / 1e9:>10.1f}")
