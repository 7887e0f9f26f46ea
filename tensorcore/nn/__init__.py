"""Neural-network building blocks: ``Module``, layers, losses, containers, ``functional`` and ``utils``."""

from tensorcore.nn import functional, utils
from tensorcore.nn.activations import GELU, Sigmoid, Softmax, Tanh
from tensorcore.nn.containers import ModuleList
from tensorcore.nn.layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    LayerNorm,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
)
from tensorcore.nn.losses import CrossEntropyLoss, MSELoss
from tensorcore.nn.module import Module

__all__ = [
    "functional", "utils", "Module", "Linear", "Embedding", "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten",
    "Dropout", "BatchNorm2d", "LayerNorm", "ReLU", "GELU", "Sigmoid", "Tanh", "Softmax", "Sequential",
    "ModuleList", "CrossEntropyLoss", "MSELoss",
]
