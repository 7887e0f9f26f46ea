"""``ModuleList``: a list of sub-modules that the parent registers (PyTorch's ``nn.ModuleList``).

A plain Python list of layers hides them from ``parameters()``, ``state_dict()`` and
``to_device()``; a ``ModuleList`` registers each entry under its position, so a model's
``self.blocks = ModuleList(...)`` gives parameter names like ``blocks.0.weight``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tensorcore.nn.module import Module


def _check(module: Any, where: str) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"ModuleList.{where}: entries must be nn.Module instances, got {type(module).__name__}")
    return module


class ModuleList(Module):
    """Sub-modules held in a list: indexing (ints and slices), ``len``, iteration, ``append``,
    ``extend``, ``insert``, item assignment and deletion. It has no ``forward``: the parent
    decides how to call the entries."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _entries(self) -> list[Module]:
        return list(self._modules.values())

    def _renumber(self, modules: list[Module]) -> None:
        """Register ``modules`` as entries 0, 1, ... in place of the current ones."""
        for name in list(self._modules):
            del self._modules[name]
            self.__dict__.pop(name, None)
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def _index(self, index: int) -> int:
        n = len(self._modules)
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"ModuleList indices must be ints or slices, got {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"ModuleList index {index} is out of range for {n} modules")
        return index % n

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ModuleList(self._entries()[index])
        return self._entries()[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, str(self._index(index)), _check(module, "__setitem__"))

    def __delitem__(self, index: int | slice) -> None:
        entries = self._entries()
        if isinstance(index, slice):
            del entries[index]
        else:
            del entries[self._index(index)]
        self._renumber(entries)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._entries())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns the list, as PyTorch's does."""
        setattr(self, str(len(self._modules)), _check(module, "append"))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add every module of ``modules`` at the end."""
        if isinstance(modules, Module) and not isinstance(modules, ModuleList):
            raise TypeError("ModuleList.extend takes an iterable of modules; use append for one module")
        for m in list(modules):
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index`` (the later entries are renumbered)."""
        entries = self._entries()
        entries.insert(index, _check(module, "insert"))
        self._renumber(entries)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """A ModuleList is not callable: iterate over it in the parent's ``forward``."""
        raise NotImplementedError("ModuleList has no forward(); call its modules from the parent's forward, "
                                  "e.g. `for block in self.blocks: x = block(x)` (or use nn.Sequential)")


__all__ = ["ModuleList"]
