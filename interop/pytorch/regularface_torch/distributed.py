"""BatchNorm over the global batch of a `torchrun` job on any backend.

PyTorch's `SyncBatchNorm` runs only on GPUs; this module is its CPU (gloo)
counterpart, used by train_ddp.py when the job has no GPU. Training-mode
statistics are reduced over every rank (sums in float64), so P ranks with B/P
images each compute what one process computes with B: the batch mean and
variance, the running statistics (momentum, unbiased variance), and the input
gradient

    dx = γ / σ · (dy - mean(dy) - x̂ · mean(dy · x̂))

with both means over the global batch (one all-reduce of two C-vectors in the
backward). γ and β get their local gradients; DDP averages them.
"""
import torch
import torch.distributed as dist
import torch.nn as nn


class _GlobalBatchNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        xd = x.double()
        count = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float64)
        stats = torch.cat([xd.sum(dims), (xd * xd).sum(dims), count])
        dist.all_reduce(stats)
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0.0)
        invstd = (var + eps).rsqrt()
        xhat = ((xd - mean.view(shape)) * invstd.view(shape)).to(x.dtype)
        ctx.save_for_backward(xhat, weight, invstd.to(x.dtype))
        ctx.n, ctx.dims, ctx.shape = n, dims, shape
        y = xhat * weight.view(shape) + bias.view(shape)
        return y, mean.to(x.dtype), (var * n / (n - 1).clamp_min(1.0)).to(x.dtype)

    @staticmethod
    def backward(ctx, gy, _mean, _var):
        xhat, weight, invstd = ctx.saved_tensors
        dims, shape, n = ctx.dims, ctx.shape, ctx.n
        db, dw = gy.sum(dims), (gy * xhat).sum(dims)
        sums = torch.cat([db, dw]).double()
        dist.all_reduce(sums)
        c = db.shape[0]
        mean_dy, mean_dy_xhat = (sums[:c] / n).to(gy.dtype), (sums[c:] / n).to(gy.dtype)
        dx = (weight * invstd).view(shape) * (gy - mean_dy.view(shape) - xhat * mean_dy_xhat.view(shape))
        needs = ctx.needs_input_grad
        return dx, dw if needs[1] else None, db if needs[2] else None, None


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm1d/2d whose training statistics span every rank (same names and state)."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects [N, C, ...] input, got {list(x.shape)}")

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        y, mean, var = _GlobalBatchNormFn.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
            self.running_var.mul_(1 - self.momentum).add_(var, alpha=self.momentum)
            self.num_batches_tracked += 1
        return y


def global_batch_norm(module):
    """`module` with every BatchNorm1d/2d replaced by a GlobalBatchNorm holding the same state."""
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        out.load_state_dict(module.state_dict())
        out.weight.requires_grad_(module.weight.requires_grad)
        return out
    for name, child in module.named_children():
        module.add_module(name, global_batch_norm(child))
    return module


def has_batch_norm(module):
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
