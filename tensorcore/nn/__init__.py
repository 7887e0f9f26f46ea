"""Neural-network building blocks: ``Module``, layers, and ``functional``."""

from tensorcore.nn import functional
from tensorcore.nn.layers import BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from tensorcore.nn.module import Module

__all__ = [
    "functional", "Module", "Linear", "Conv2d", "MaxPool2d", "Flatten", "Dropout",
    "BatchNorm2d", "ReLU", "Sequential",
]
