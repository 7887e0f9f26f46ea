"""Built-in device backends, installed as ``tensorcore.backends``.

Each module is one backend, registered in ``pyproject.toml`` under the entry-point group
``tensorcore.backends``, the same way a third-party backend registers.
"""
