"""``tc.train``: the training workflow (checkpoints) and the digits main job of ``tensorcore train``."""

from tensorcore.train.checkpoint import Checkpoint, CheckpointManager
from tensorcore.train.digits import (
    TrainResult,
    describe_strategy,
    digits_cnn,
    evaluate,
    load_digits_split,
    make_strategy,
    summary,
    train,
)

__all__ = [
    "Checkpoint", "CheckpointManager",
    "TrainResult", "describe_strategy", "digits_cnn", "evaluate", "load_digits_split", "make_strategy", "summary", "train",
]
