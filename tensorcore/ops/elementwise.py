"""All elementwise op functions in one namespace (the Array API's "element-wise functions")."""

from tensorcore.ops.arithmetic import *  # noqa: F403
from tensorcore.ops.arithmetic import __all__ as _a
from tensorcore.ops.complex_parts import *  # noqa: F403
from tensorcore.ops.complex_parts import __all__ as _c
from tensorcore.ops.logic import *  # noqa: F403
from tensorcore.ops.logic import __all__ as _l
from tensorcore.ops.math import *  # noqa: F403
from tensorcore.ops.math import __all__ as _m

__all__ = _a + _l + _m + _c
