"""Optimizers that update Variables in place with fused kernels: SGD, Adam, AdamW."""

from tensorcore.optim.adam import Adam, AdamW
from tensorcore.optim.optimizer import Optimizer
from tensorcore.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
