"""Continue a regularface run in PyTorch on many processes (DistributedDataParallel),
and write it back in regularface's checkpoint format.

    torchrun --nproc_per_node P train_ddp.py --checkpoint IN --steps N --out DIR \\
        [--data DIR | --lfw DIR --fold K | --mnist DIR | --rec DIR]

The model, loss, exclusive regularizer, optimiser state, A-Softmax counter and
learning-rate schedule are the checkpoint's (its config is kept verbatim). The
global batch is the run's `batch`, split evenly over the P ranks; gradients are
averaged by DDP, BatchNorm statistics span the global batch (SyncBatchNorm on
GPUs, regularface_torch.distributed.GlobalBatchNorm on CPUs), center-loss
centers move with the whole batch's features, and every rank computes the same
regularizer on the replicated W. Backend: nccl with GPUs, gloo without.

The data flags say where the run's data is on this machine; they must name the
same kind of source (and LFW fold) the checkpoint records, which stays recorded
so `regularface train --resume` accepts the result. Without them the recorded
paths are used. Batches come from a DistributedSampler seeded with the run's
seed (a different order from the Rust loader's; the same images and labels).

Rank 0 writes DIR/checkpoint.safetensors atomically with `step` advanced by N
(and, when that ends the run, a verification threshold fitted on pairs of
training identities, as regularface does), and appends to DIR/metrics.jsonl.
`--batch-file B` trains every step on the batch of a `regularface batch` file,
split over the ranks: the check that P processes take the step one does.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from regularface_torch import CheckpointError, FaceModel  # noqa: E402
from regularface_torch.data import DataError, normalise, open_training_set  # noqa: E402
from regularface_torch.distributed import global_batch_norm, has_batch_norm  # noqa: E402
from regularface_torch.losses import nearest_neighbours  # noqa: E402
from regularface_torch.model import fit_threshold  # noqa: E402
from one_step import read_batch  # noqa: E402


def data_spec(args, recorded):
    """The recorded data source, with its folder moved to where the flags say."""
    given = {"data": ("folder", args.data), "lfw": ("lfw", args.lfw), "mnist": ("mnist", args.mnist),
             "rec": ("rec", args.rec)}
    given = [(flag, kind, path) for flag, (kind, path) in given.items() if path]
    if len(given) > 1:
        raise DataError("give at most one of --data, --lfw, --mnist, --rec")
    if not given:
        return recorded
    flag, kind, path = given[0]
    if recorded and recorded["kind"] != kind:
        raise DataError(f"--{flag}: the run trained on a {recorded['kind']} source, not {kind}")
    if kind == "lfw" and recorded and args.fold is not None and args.fold != recorded["fold"]:
        raise DataError(f"--fold {args.fold}: the run holds out LFW fold {recorded['fold']}")
    spec = dict(recorded or {"kind": kind})
    spec["root"] = path
    return spec


class Batches:
    """This rank's share of each step's global batch, mirrored at random (p = 0.5)."""

    def __init__(self, dataset, per_rank, seed, flip, rank, world, workers):
        self.sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                                           seed=seed, drop_last=True)
        self.steps_per_epoch = max(len(self.sampler) // per_rank, 1)
        self.dataset, self.per_rank, self.workers = dataset, per_rank, workers
        self.seed, self.flip, self.rank, self.epoch, self.it = seed, flip, rank, None, None

    def at(self, step):
        epoch = step // self.steps_per_epoch
        if epoch != self.epoch:
            # The epoch's order, entered at this step's batch (the skipped images are not decoded).
            self.sampler.set_epoch(epoch)
            order = list(self.sampler)[(step % self.steps_per_epoch) * self.per_rank:]
            loader = torch.utils.data.DataLoader(self.dataset, batch_size=self.per_rank, sampler=order,
                                                 drop_last=True, num_workers=self.workers)
            self.epoch, self.it = epoch, iter(loader)
        images, labels = next(self.it)
        images = normalise(images)
        if self.flip:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + step * 1009 + self.rank)
            mirror = torch.rand(len(labels), generator=g) < 0.5
            images[mirror] = torch.flip(images[mirror], dims=[3])
        return images, labels.long()


def gather(t, world):
    if world == 1:
        return t
    parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data")
    ap.add_argument("--lfw")
    ap.add_argument("--fold", type=int)
    ap.add_argument("--mnist")
    ap.add_argument("--rec")
    ap.add_argument("--batch-file")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=10)
    args = ap.parse_args()

    world, rank = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    if not cuda:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))

    def convert(m):
        if world > 1 and has_batch_norm(m):
            return torch.nn.SyncBatchNorm.convert_sync_batchnorm(m) if cuda else global_batch_norm(m)
        return m

    model, opt, start, meta = FaceModel.from_checkpoint(args.checkpoint, convert=convert)
    cfg = model.cfg
    end = start + args.steps
    if args.steps < 1 or end > cfg["steps"]:
        sys.exit(f"error: --steps {args.steps}: the run is at step {start} of {cfg['steps']} "
                 f"(its schedule); continue at most {cfg['steps'] - start} steps")
    if cfg["batch"] % world:
        sys.exit(f"error: the run's batch {cfg['batch']} does not split over {world} processes")
    per_rank = cfg["batch"] // world
    model.to(device)
    for state in opt.state.values():
        state["momentum_buffer"] = state["momentum_buffer"].to(device)
    ddp = DistributedDataParallel(model, device_ids=[local] if cuda else None) if world > 1 else model

    recorded = json.loads(meta["regularface.data"]) if "regularface.data" in meta else None
    dataset = None
    if args.batch_file:
        batch_step, fixed_images, fixed_labels = read_batch(args.batch_file)
        if batch_step != start or len(fixed_labels) != cfg["batch"]:
            sys.exit(f"error: {args.batch_file}: a batch of {len(fixed_labels)} for step {batch_step}; "
                     f"the run is at step {start} with batches of {cfg['batch']}")
        share = slice(rank * per_rank, (rank + 1) * per_rank)
        next_batch = lambda step: (fixed_images[share], fixed_labels[share])  # noqa: E731
    else:
        try:
            dataset = open_training_set(data_spec(args, recorded), cfg["input"])
        except (DataError, OSError) as e:
            sys.exit(f"error: {e}")
        if dataset.classes != model.head.weight.shape[0]:
            sys.exit(f"error: the data has {dataset.classes} identities, the checkpoint "
                     f"{model.head.weight.shape[0]}")
        batches = Batches(dataset, per_rank, cfg["seed"], cfg["flip"], rank, world, args.workers)
        next_batch = batches.at

    os.makedirs(args.out, exist_ok=True)
    metrics_path = os.path.join(args.out, "metrics.jsonl")
    if rank == 0:
        kept = []
        if os.path.exists(metrics_path):
            with open(metrics_path) as f:
                kept = [ln for ln in f if ln.strip() and json.loads(ln).get("step", math.inf) <= start]
        metrics = open(metrics_path, "w")
        metrics.writelines(kept)
    t0, seen = time.time(), 0
    for step in range(start, end):
        images, labels = next_batch(step)
        images, labels = images.to(device), labels.to(device)
        terms, feats = model.train_step(opt, images, labels, step, module=ddp)
        model.move_centers(gather(feats, world), gather(labels, world))
        seen += cfg["batch"]
        done = step + 1
        if rank == 0 and (done % args.log_every == 0 or done == end):
            sep = nearest_neighbours(model.head.weight.detach())[1].double()
            with torch.no_grad():
                pred = (torch.nn.functional.normalize(feats, dim=1)
                        @ torch.nn.functional.normalize(model.head.weight, dim=1).t()).argmax(1)
            line = {"step": done, "lr": model.lr_at(step),
                    "loss": {k: terms[k] for k in ("main", "center", "regularizer", "total")},
                    "accuracy": (pred == labels).double().mean().item(),
                    "lambda": model.asoftmax.lam() if model.asoftmax else None,
                    "sep_mean": sep.mean().item(), "sep_std": sep.std(unbiased=False).item(),
                    "images_per_s": seen / max(time.time() - t0, 1e-9), "trained_by": f"pytorch ddp x{world}"}
            metrics.write(json.dumps(line) + "\n")
            metrics.flush()
            print(f"step {done}/{cfg['steps']}  loss {terms['total']:.4f}  Sep {line['sep_mean']:.4f}  "
                  f"{line['images_per_s']:.1f} img/s", flush=True)
    if rank == 0:
        metrics.close()
        threshold = None
        if end == cfg["steps"] and dataset is not None:
            threshold = fit_threshold(model.backbone, dataset, cfg["seed"])
        model.to("cpu")
        for state in opt.state.values():
            state["momentum_buffer"] = state["momentum_buffer"].cpu()
        out = os.path.join(args.out, "checkpoint.safetensors")
        model.save(out, opt, end, meta, threshold)
        print(f"wrote {out} at step {end} of {cfg['steps']} ({world} process(es))", flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    try:
        main()
    except CheckpointError as e:
        sys.exit(f"error: {e}")
