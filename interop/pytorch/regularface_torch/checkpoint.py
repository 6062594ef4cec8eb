"""regularface's checkpoint format (`src/checkpoint.rs` defines it), read and
written completely: backbone, head, SGD momentum, A-Softmax's λ counter, the
regularizer's held neighbours, step, config, data source, threshold, checksum.

A checkpoint is a safetensors file: f32 tensors (`backbone.*` as the PyTorch
module's state_dict, BatchNorm's `num_batches_tracked` as int64 scalars;
`head.weight`, `head.bias`, `head.centers`; `optim.steps` and
`optim.<param>.first`, SGD's momentum buffers) and string metadata
(`regularface.config`, `.step`, `.classes`, `.lambda_iteration`,
`.exclusive_cache`, `.data`, `.verify_threshold`, `.verify_threshold_fitted_on`,
`.checksum`). The checksum is FNV-1a 64 over every tensor's name, shape (u64
little-endian) and little-endian bytes, in name order.
"""
import json
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

CHECKSUM_KEY = "regularface.checksum"
_FNV_OFFSET, _FNV_PRIME, _MASK = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


class CheckpointError(ValueError):
    """A file that is not a readable regularface checkpoint (the message names it)."""


def _fnv1a(h, data):
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK
    return h


def checksum(tensors):
    """regularface's checksum of `{name: tensor}` (f32 and int64 tensors). Pure
    Python: about 8 MB/s, so seconds for a small model, a minute for iResNet-50."""
    h = _FNV_OFFSET
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h = _fnv1a(h, name.encode())
        for d in t.shape:
            h = _fnv1a(h, int(d).to_bytes(8, "little"))
        h = _fnv1a(h, t.view(-1).view(torch.uint8).numpy().tobytes())
    return f"{h:016x}"


def read(path, verify=True):
    """`(tensors, metadata)` of a checkpoint; checks the checksum unless `verify` is False."""
    try:
        with safe_open(path, "pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, Exception) as e:  # safetensors raises its own error types
        raise CheckpointError(f"checkpoint {path}: unreadable ({e})") from e
    if "regularface.config" not in metadata:
        raise CheckpointError(f"checkpoint {path}: not a regularface checkpoint (no config in its metadata)")
    for k, t in tensors.items():
        if t.dtype == torch.float64:
            tensors[k] = t.float()
    stored = metadata.get(CHECKSUM_KEY)
    if verify and stored is not None:
        computed = checksum(tensors)
        if computed != stored:
            raise CheckpointError(f"checkpoint {path}: corrupt (checksum {computed} does not match the stored {stored})")
    return tensors, metadata


def write(path, tensors, metadata):
    """Write `tensors` (f32, and int64 scalars) and `metadata` with the checksum,
    atomically: a temporary file in the same folder, synced, then renamed."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    for k, v in tensors.items():
        if v.dtype not in (torch.float32, torch.int64) or (v.dtype == torch.int64 and v.dim() != 0):
            raise CheckpointError(f"checkpoint {path}: tensor {k} is {v.dtype} {list(v.shape)}; "
                                  "only f32 tensors and int64 scalars are stored")
    meta = {k: str(v) for k, v in metadata.items() if k != CHECKSUM_KEY}
    meta[CHECKSUM_KEY] = checksum(tensors)
    tmp = f"{path}.tmp"
    try:
        save_file(tensors, tmp, metadata=meta)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def config_of(metadata):
    """The run's config (the JSON of `regularface.config`) as a dict."""
    return json.loads(metadata["regularface.config"])
