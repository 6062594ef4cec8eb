"""A regularface training run in PyTorch: backbone, classifier head and losses
built from a checkpoint's config, the optimiser and learning-rate schedule
regularface uses, and the training step, so a run continues with the same
maths on either side (`src/model.rs` and `src/train.rs` are the Rust halves).
"""
import json
import math

import torch
import torch.nn as nn

from . import checkpoint as ck
from .backbones import build_backbone
from .losses import (ASoftmax, ExclusiveRegularizer, a_softmax_loss, arcface_loss, center_loss, cosface_loss,
                     softmax_loss, update_centers)


class Head(nn.Module):
    """The classifier: `weight` `[C, K]` (the W_i rows), `bias` `[C]` (softmax and
    center loss), `centers` `[C, K]` (center loss, a buffer moved by its own rule)."""

    def __init__(self, classes, dim, bias, centers):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.bias = nn.Parameter(torch.zeros(classes)) if bias else None
        if centers:
            self.register_buffer("centers", torch.zeros(classes, dim))
        else:
            self.centers = None


class FaceModel(nn.Module):
    """Backbone + head; `forward(images, labels, step)` returns the loss to
    backpropagate, its terms and the features, as `FaceModel::loss` does. The
    loss state (A-Softmax's counter, the regularizer's held neighbours) lives here."""

    def __init__(self, cfg, classes):
        super().__init__()
        if classes < 2:
            raise ValueError(f"training needs at least 2 identities, the checkpoint has {classes}")
        self.cfg, loss = cfg, cfg["loss"]
        self.backbone = build_backbone(cfg)
        self.head = Head(classes, cfg["feature_dim"], bias=loss in ("softmax", "center"), centers=loss == "center")
        self.asoftmax = ASoftmax(int(cfg["margin"]), cfg["lambda_schedule"]) if loss == "asoftmax" else None
        self.exclusive = (ExclusiveRegularizer(cfg["lambda_r"], cfg["exclusive_refresh"])
                          if cfg["lambda_r"] > 0 else None)
        self.optim_steps = 0

    def forward(self, images, labels, step):
        cfg, head = self.cfg, self.head
        feats = self.backbone(images)
        terms = {"center": 0.0, "regularizer": 0.0}
        loss = cfg["loss"]
        if loss == "softmax":
            main = softmax_loss(feats, head.weight, head.bias, labels)
        elif loss == "center":
            c = center_loss(feats, head.centers, labels) * cfg["center_weight"]
            terms["center"] = c.item()
            main = softmax_loss(feats, head.weight, head.bias, labels) + c
        elif loss == "asoftmax":
            main = self.asoftmax(feats, head.weight, labels)
        elif loss == "cosface":
            main = cosface_loss(feats, head.weight, labels, cfg["scale"], cfg["margin"])
        elif loss == "arcface":
            main = arcface_loss(feats, head.weight, labels, cfg["scale"], cfg["margin"])
        else:
            raise ValueError(f"unknown loss {loss!r}")
        terms["main"] = main.item()
        total = main
        if self.exclusive is not None:
            reg = self.exclusive(head.weight, step)
            terms["regularizer"] = reg.item()
            total = main + reg
        terms["total"] = total.item()
        return total, terms, feats

    def decays(self, name):
        """Whether weight decay applies to a parameter: every trained parameter of
        insightface's backbones; not biases and PReLU slopes of SphereFace and LeNet++."""
        insightface = self.cfg["model"] == "mobilefacenet" or self.cfg["model"].startswith("iresnet")
        return insightface or not (name.endswith("bias") or "prelu" in name)

    def optimizer(self):
        """SGD (PyTorch's, which is regularface's formulation) over the trained parameters,
        in two groups by weight decay; the learning rate is set per step by `lr_at`."""
        cfg, groups = self.cfg, {True: [], False: []}
        for name, p in self.named_parameters():
            if p.requires_grad:
                groups[self.decays(name)].append(p)
        return torch.optim.SGD([{"params": groups[True], "weight_decay": cfg["weight_decay"]},
                                {"params": groups[False], "weight_decay": 0.0}],
                               lr=cfg["lr"], momentum=cfg["momentum"])

    def lr_at(self, step):
        """SphereFace's schedule: the base rate, 10x lower from step 16/28 and again from 24/28 of the run."""
        total = self.cfg["steps"]
        drops = sum(step >= m for m in (total * 16 // 28, total * 24 // 28))
        return self.cfg["lr"] * 0.1 ** drops

    def train_step(self, opt, images, labels, step, module=None):
        """Forward (through `module`, e.g. the DDP wrapper of this model), backward, SGD
        at the schedule's rate, gradients cleared. Returns the loss terms and the
        features, which `move_centers` then takes (under DDP, the whole global batch's)."""
        total, terms, feats = (module or self)(images, labels, step)
        if not math.isfinite(terms["total"]):
            raise FloatingPointError(f"the loss is not finite at step {step + 1}: {terms}")
        opt.zero_grad(set_to_none=True)
        total.backward()
        for g in opt.param_groups:
            g["lr"] = self.lr_at(step)
        opt.step()
        self.optim_steps += 1
        opt.zero_grad(set_to_none=True)
        return terms, feats.detach()

    def move_centers(self, feats, labels):
        if self.head.centers is not None:
            update_centers(self.head.centers, feats, labels, self.cfg["center_alpha"])

    # ---- regularface's checkpoint format ----

    @classmethod
    def from_checkpoint(cls, path, verify=True, convert=None):
        """The run saved in `path`: `(model, optimizer, step, metadata)`, model in training
        mode. `convert(model)` runs before the optimiser is built (e.g. to swap BatchNorm
        for a synchronised one) and returns the model to use."""
        tensors, meta = ck.read(path, verify)
        cfg = ck.config_of(meta)
        model = cls(cfg, int(meta["regularface.classes"]))
        state = {k: v for k, v in tensors.items() if not k.startswith("optim.")}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ck.CheckpointError(f"checkpoint {path}: does not fit a {cfg['model']} model: {e}") from e
        if model.asoftmax is not None:
            model.asoftmax.iteration = int(meta.get("regularface.lambda_iteration", 0))
        if model.exclusive is not None and "regularface.exclusive_cache" in meta:
            model.exclusive.cache = json.loads(meta["regularface.exclusive_cache"])
        if convert is not None:
            model = convert(model)
        model.optim_steps = int(round(tensors["optim.steps"].item())) if "optim.steps" in tensors else 0
        opt = model.optimizer()
        for name, p in model.named_parameters():
            buf = tensors.get(f"optim.{name}.first")
            if buf is not None:
                opt.state[p]["momentum_buffer"] = buf.reshape(p.shape).clone()
        model.train()
        return model, opt, int(meta.get("regularface.step", 0)), meta

    def save(self, path, opt, step, meta, threshold=None):
        """Write this run at `step` in regularface's format. `meta` is the metadata the run
        was loaded with (config and data source are kept verbatim); a stored threshold
        is dropped (it was fitted to older weights) unless `threshold` = (value, fitted_on)."""
        tensors = dict(self.state_dict())
        names = {p: n for n, p in self.named_parameters()}
        for p, state in opt.state.items():
            if state.get("momentum_buffer") is not None:
                tensors[f"optim.{names[p]}.first"] = state["momentum_buffer"]
        tensors["optim.steps"] = torch.tensor(float(self.optim_steps))
        out = {k: v for k, v in meta.items() if k.startswith("regularface.") and k not in (
            "regularface.verify_threshold", "regularface.verify_threshold_fitted_on", ck.CHECKSUM_KEY)}
        out["regularface.step"] = str(step)
        out["regularface.classes"] = str(self.head.weight.shape[0])
        if self.asoftmax is not None:
            out["regularface.lambda_iteration"] = str(self.asoftmax.iteration)
        if self.exclusive is not None and self.exclusive.cache is not None:
            out["regularface.exclusive_cache"] = json.dumps(self.exclusive.cache, separators=(",", ":"))
        if threshold is not None:
            out["regularface.verify_threshold"] = repr(float(threshold[0]))
            out["regularface.verify_threshold_fitted_on"] = threshold[1]
        ck.write(path, tensors, out)


def load_backbone(path):
    """The checkpoint's backbone (strictly loaded, eval mode) and its config."""
    tensors, meta = ck.read(path, verify=False)
    cfg = ck.config_of(meta)
    model = build_backbone(cfg)
    state = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
    model.load_state_dict(state, strict=True)
    return model.eval(), cfg


@torch.no_grad()
def fit_threshold(backbone, dataset, seed, pairs=600, batch=32):
    """The plain-cosine threshold `regularface verify` compares with, fitted as regularface
    fits it at the end of a run: on `pairs` pairs of *training* identities (half same, half
    different, drawn with `seed`), features `[f(x), f(mirror x)]` in eval mode, the
    threshold of best accuracy. Returns `(threshold, description)`."""
    from .data import normalise
    g = torch.Generator().manual_seed(seed)
    by_label = {}
    for i, (_, label) in enumerate(dataset.items):
        by_label.setdefault(label, []).append(i)
    multi = [v for v in by_label.values() if len(v) >= 2]
    if not multi or len(by_label) < 2:
        return None
    pick = lambda n: int(torch.randint(n, (1,), generator=g))  # noqa: E731
    chosen = []
    for k in range(pairs):
        if k % 2 == 0:
            imgs = multi[pick(len(multi))]
            a, b = pick(len(imgs)), pick(len(imgs) - 1)
            chosen.append((imgs[a], imgs[b + (b >= a)], True))
        else:
            a, b = pick(len(dataset)), pick(len(dataset))
            if dataset.items[a][1] != dataset.items[b][1]:
                chosen.append((a, b, False))
    used = sorted({i for a, b, _ in chosen for i in (a, b)})
    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    feats = {}
    for at in range(0, len(used), batch):
        idx = used[at:at + batch]
        x = normalise(torch.stack([dataset[i][0] for i in idx])).to(device)
        f = torch.cat([backbone(x), backbone(torch.flip(x, dims=[3]))], dim=1).double().cpu()
        feats.update(zip(idx, f))
    backbone.train(was_training)
    scored = sorted((float(nn.functional.cosine_similarity(feats[a], feats[b], dim=0)), same)
                    for a, b, same in chosen)
    correct = sum(same for _, same in scored)
    best = (correct, scored[0][0] - 1e-6)
    for i, (v, same) in enumerate(scored):
        correct += -1 if same else 1
        if i + 1 < len(scored) and scored[i + 1][0] == v:
            continue
        thr = (v + scored[i + 1][0]) / 2 if i + 1 < len(scored) else v + 1e-6
        if correct > best[0]:
            best = (correct, thr)
    return best[1], f"{len(scored)} pairs of training identities (fitted by PyTorch)"
