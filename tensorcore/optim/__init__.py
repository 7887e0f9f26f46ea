"""Optimizers that update Variables in place with fused kernels: SGD, Adam, AdamW; and
learning-rate schedules (``tc.optim.lr_scheduler``)."""

from tensorcore.optim import lr_scheduler
from tensorcore.optim.adam import Adam, AdamW
from tensorcore.optim.optimizer import Optimizer
from tensorcore.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
