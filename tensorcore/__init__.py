"""tensorcore: a tensor runtime with pluggable device backends.

The ``tensorcore`` module is a Python Array API standard namespace (``import tensorcore as tc``)
plus TensorFlow-style autodiff (``GradientTape``, ``Variable``) and device placement.
"""

from __future__ import annotations

import math as _math

from tensorcore import bench, data, distribute, fft, linalg, nn, optim, random, summary, train  # noqa: E402  (tc.distribute, tc.fft, ...)
from tensorcore import dtypes as _dtypes
from tensorcore.autodiff.custom import custom_gradient, stop_gradient
from tensorcore.autodiff.tape import GradientTape
from tensorcore.autodiff.variable import Variable
from tensorcore.custom_op import custom_op
from tensorcore.device import Device, current_device, default_device, device, set_default_device
from tensorcore.dtypes import (
    bool,
    can_cast,
    complex64,
    complex128,
    finfo,
    float16,
    float32,
    float64,
    iinfo,
    int8,
    int16,
    int32,
    int64,
    isdtype,
    result_type,
    uint8,
    uint16,
    uint32,
    uint64,
)
from tensorcore.errors import (  # every error type a user may catch, and KernelUnsupported for kernel authors
    CollectiveError,
    DeviceError,
    DeviceUnavailableError,
    GradientError,
    KernelBuildError,
    KernelUnsupported,
    OpError,
    OutOfMemoryError,
    PlacementError,
    SerializationError,
)
from tensorcore.graph import TraceError, function
from tensorcore.info import __array_namespace_info__
from tensorcore.ops import methods as _methods  # noqa: F401 - installs Tensor operators
from tensorcore.ops import optim_updates as _optim_updates  # defines the in-place update ops
from tensorcore.ops.creation import *  # noqa: F403
from tensorcore.ops.elementwise import *  # noqa: F403
from tensorcore.ops.indexing import *  # noqa: F403
from tensorcore.ops.linalg import *  # noqa: F403
from tensorcore.ops.manipulation import *  # noqa: F403
from tensorcore.ops.reductions import *  # noqa: F403
from tensorcore.ops.searching import *  # noqa: F403
from tensorcore.ops.sets import *  # noqa: F403
from tensorcore.ops.sorting import *  # noqa: F403
from tensorcore.placement import placement_policy, placement_stats, reset_placement_stats
from tensorcore.placement import set_policy as set_placement_policy
from tensorcore.runtime import devices, memory_stats, synchronize
from tensorcore.serialization import load, save
from tensorcore.tensor import Tensor  # first: every layer below imports it

__version__ = "0.1.0"
__array_api_version__ = "2023.12"

e = _math.e
inf = _math.inf
nan = _math.nan
pi = _math.pi
newaxis = None
