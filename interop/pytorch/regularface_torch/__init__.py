"""regularface in PyTorch: the same backbones, losses, exclusive regularizer,
optimiser, schedule and checkpoint format as the Rust tool, so a run moves
between the two (and onto many machines under `torchrun`, see train_ddp.py).

    from regularface_torch import FaceModel, load_backbone
    model, cfg = load_backbone("runs/train/checkpoint.safetensors")   # eval mode
    run, opt, step, meta = FaceModel.from_checkpoint("runs/train/checkpoint.safetensors")
"""
from .backbones import build_backbone
from .checkpoint import CheckpointError
from .model import FaceModel, load_backbone

__all__ = ["FaceModel", "CheckpointError", "build_backbone", "load_backbone"]
