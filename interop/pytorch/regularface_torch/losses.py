"""regularface's losses in PyTorch, term for term those of the `facelosses`
crate (its doc comments give the formulas), and the exact exclusive
regularizer, computed in row blocks so the C x C cosine matrix never exists.

Conventions: features `x` are `[N, K]`, class weights `w` are `[C, K]` rows,
labels `y` are `[N]` class indices; every classification loss is the mean
cross-entropy over the batch.
"""
import math

import torch
import torch.nn.functional as F

NORM_EPS = 1e-12
"""Floor on norms when normalising rows (a zero row gives zeros, not NaN)."""

TILE = 256
"""Rows per block of the regularizer's nearest-neighbour search."""


def normalize_rows(v):
    return v / v.norm(dim=1, keepdim=True).clamp_min(NORM_EPS)


def softmax_loss(x, w, b, y):
    """`mean CE(x Wᵀ + b, y)` (b may be None)."""
    logits = x @ w.t()
    return F.cross_entropy(logits if b is None else logits + b, y)


def _at_targets(logits, delta, y):
    """`logits` with `delta[i]` added at `(i, y[i])`."""
    return logits + F.one_hot(y, logits.shape[1]).to(logits.dtype) * delta[:, None]


def cosface_loss(x, w, y, s, m):
    """CosFace: `CE(s (cos θ_j - m [j = y]))`."""
    cos = normalize_rows(x) @ normalize_rows(w).t()
    return F.cross_entropy(_at_targets(cos, torch.full_like(y, -m, dtype=cos.dtype), y) * s, y)


def arcface_loss(x, w, y, s, m):
    """ArcFace: target `s cos(θ_y + m)`, falling back to `s (cos θ_y - m sin m)` where θ_y + m > π."""
    cos = normalize_rows(x) @ normalize_rows(w).t()
    cos_y = cos.gather(1, y[:, None])[:, 0]
    sin_y = (1.0 - cos_y * cos_y).clamp(1e-12, 1.0).sqrt()
    with_margin = cos_y * math.cos(m) - sin_y * math.sin(m)
    keep = (cos_y.detach().double() > math.cos(math.pi - m)).to(cos.dtype)
    target = with_margin * keep + (cos_y - m * math.sin(m)) * (1.0 - keep)
    return F.cross_entropy(_at_targets(cos, target - cos_y, y) * s, y)


def _chebyshev(c, m):
    if m == 1:
        return c
    if m == 2:
        return 2.0 * c * c - 1.0
    if m == 3:
        return 4.0 * c * c * c - 3.0 * c
    sq = c * c
    return 8.0 * sq * sq - 8.0 * sq + 1.0


def a_softmax_loss(x, w, y, m, lam):
    """A-Softmax for a given λ: target logit `|x| (λ cos θ_y + ψ(θ_y)) / (1 + λ)`,
    `ψ(θ) = (-1)^k T_m(cos θ) - 2k`, `k = ⌊m θ / π⌋` held constant; other logits `|x| cos θ_j`."""
    x_norm = x.norm(dim=1, keepdim=True).clamp_min(NORM_EPS)
    cos = ((x @ normalize_rows(w).t()) / x_norm).clamp(-1.0, 1.0)
    cos_y = cos.gather(1, y[:, None])[:, 0]
    k = torch.floor(m * torch.acos(cos_y.detach().double()) / math.pi)
    sign = (1.0 - 2.0 * torch.remainder(k, 2.0)).to(cos.dtype)
    psi = _chebyshev(cos_y, m) * sign - (2.0 * k).to(cos.dtype)
    target = (cos_y * lam + psi) / (1.0 + lam)
    delta = (target - cos_y) * x_norm[:, 0]
    return F.cross_entropy(_at_targets(cos * x_norm, delta, y), y)


class ASoftmax:
    """A-Softmax with margin m and SphereFace's λ annealing,
    `λ(it) = max(λ_min, base (1 + γ it)^(-power))`; `iteration` (training
    state, saved as `regularface.lambda_iteration`) advances before each forward."""

    def __init__(self, m, schedule, iteration=0):
        if m not in (1, 2, 3, 4):
            raise ValueError(f"A-Softmax margin m = {m} is not supported: choose 1, 2, 3 or 4")
        self.m, self.schedule, self.iteration = int(m), dict(schedule), int(iteration)

    def lam(self):
        s = self.schedule
        return max(s["lambda_min"], s["base"] * (1.0 + s["gamma"] * self.iteration) ** (-s["power"]))

    def __call__(self, x, w, y):
        self.iteration += 1
        return a_softmax_loss(x, w, y, self.m, self.lam())


def center_loss(x, centers, y):
    """`1/(2N) Σ |x_i - c_{y_i}|²`; the gradient flows to x only."""
    d = x - centers[y]
    return (d * d).sum() / (2.0 * max(len(y), 1))


@torch.no_grad()
def update_centers(centers, x, y, alpha):
    """`c_j ← c_j - α Σ_{i: y_i = j} (c_j - x_i) / (1 + n_j)`, in place."""
    counts = torch.bincount(y, minlength=centers.shape[0]).to(centers.dtype)
    summed = torch.zeros_like(centers).index_add_(0, y, centers[y] - x)
    centers -= alpha * summed / (1.0 + counts)[:, None]


@torch.no_grad()
def nearest_neighbours(w, tile=TILE):
    """Each row's nearest other row by cosine, `n(i)`, and `Sep_i = cos(W_i, W_n(i))`,
    computed `tile` rows at a time (`tile x C` cosines in memory, never C x C)."""
    c = w.shape[0]
    if c < 2:
        raise ValueError(f"exclusive regularizer: needs at least 2 classes, got {c}")
    hat = normalize_rows(w)
    nearest = torch.empty(c, dtype=torch.long, device=w.device)
    sep = torch.empty(c, dtype=w.dtype, device=w.device)
    for a in range(0, c, tile):
        block = hat[a:a + tile] @ hat.t()
        rows = torch.arange(block.shape[0], device=w.device)
        block[rows, rows + a] = float("-inf")
        sep[a:a + tile], nearest[a:a + tile] = block.max(dim=1)
    return nearest, sep


class ExclusiveRegularizer:
    """`λ_r L_r(W)`, `L_r = (1/C) Σ_i cos(W_i, W_n(i))` with `n(i)` held constant in
    the backward (the gradient of the max). With `refresh` k > 1 the neighbours are
    searched at steps that are multiples of k and held in between (`cache`, saved
    as `regularface.exclusive_cache`); k = 1 is the exact regularizer."""

    def __init__(self, lambda_r, refresh, cache=None):
        if not (lambda_r > 0 and math.isfinite(lambda_r)):
            raise ValueError(f"exclusive regularizer: λ_r = {lambda_r} must be a positive number")
        if refresh < 1:
            raise ValueError("exclusive regularizer: the refresh interval must be at least 1")
        self.lambda_r, self.refresh, self.cache = float(lambda_r), int(refresh), cache

    def __call__(self, w, step):
        c = w.shape[0]
        held = self.cache if self.refresh > 1 and self.cache is not None else None
        if held is not None and len(held["nearest"]) == c and step % self.refresh != 0:
            nearest = torch.tensor(held["nearest"], dtype=torch.long, device=w.device)
        else:
            nearest, _ = nearest_neighbours(w.detach())
            if self.refresh > 1:
                self.cache = {"nearest": nearest.tolist(), "computed_at": int(step)}
        hat = normalize_rows(w)
        return self.lambda_r * (hat * hat[nearest]).sum(dim=1).mean()
