"""``tc.train.Checkpoint`` and ``CheckpointManager``: training state in safetensors files.

A checkpoint is one safetensors file (written atomically, see ``tensorcore.serialization``):
the tensors of every object under ``"{object}/{key}"`` and the rest of their state (step
counts, learning rates, hyperparameters, generator positions) as JSON in the header's
metadata. Restoring checks the whole file against every object before it writes into any.

Under ``tensorcore.distribute`` with several MPI processes, saving and restoring are
collectives: every process calls them, only rank 0 touches the file, and rank 0's bytes
reach every process through MPI (so the other ranks need no shared filesystem).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tensorcore import random
from tensorcore.autodiff.variable import Variable
from tensorcore.errors import SerializationError
from tensorcore.serialization import TEMP_SUFFIX, parse, read, to_host_arrays, write_atomic
from tensorcore.tensor import Tensor

METADATA_KEY = "tensorcore.checkpoint"
FORMAT_VERSION = 1


class Checkpoint:
    """The state of ``objects`` (TensorFlow's ``tf.train.Checkpoint``): modules, optimizers,
    learning-rate schedulers (anything with ``state_dict``/``load_state_dict``), Variables
    (a step counter: ``tc.Variable(0, dtype=tc.int64, trainable=False)``) and NumPy generators.
    The position of ``tc.random``'s generator (dropout, initialisation, shuffling) is saved too,
    so a restored run draws what the saved one would have drawn next.
    """

    def __init__(self, **objects: Any) -> None:
        for name, obj in objects.items():
            _kind(name, obj)  # refuse what cannot be restored in place, now rather than at save
            if "/" in name:
                raise ValueError(f"Checkpoint: object name {name!r} may not contain '/'")
        self._objects = dict(objects)
        self.save_counter = 0  # saves made, restored with the rest

    @property
    def objects(self) -> dict[str, Any]:
        """The objects this checkpoint saves and restores, by name."""
        return dict(self._objects)

    # --- saving ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> str:
        """Write every object's state to ``path`` atomically; returns the path.

        With several MPI processes, every process calls it and rank 0 writes.
        """
        path = Path(path)
        strategy = _strategy_of(self._objects.values())
        self.save_counter += 1
        error: BaseException | None = None
        # Every rank's random streams go into rank 0's file: ranks seeded apart (their own
        # dropout masks) must each resume their own stream, not rank 0's.
        per_rank = _gather_random_states(strategy, self._objects) if strategy is not None and _multi_process(strategy) else None
        replica_streams = per_rank[strategy.rank]["replicas"] if per_rank is not None else _replica_streams(strategy)
        if strategy is None or strategy.is_chief:
            try:
                arrays, metadata = self._serialize(per_rank, replica_streams)
                write_atomic(path, arrays, metadata)
            except BaseException as exc:  # noqa: BLE001 - reported to every rank below, then raised
                error = exc
        if strategy is not None and _multi_process(strategy):  # every rank learns whether rank 0 wrote
            failure = strategy.broadcast_bytes(b"" if error is None else f"{type(error).__name__}: {error}".encode())
            if error is None and failure:
                error = OSError(f"rank 0 could not write {path}: {failure.decode()}")
        if error is not None:
            self.save_counter -= 1
            raise error
        return str(path)

    def _serialize(self, per_rank: list[dict[str, Any]] | None = None,
                   replica_streams: list[dict[str, Any]] | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        tensors: dict[str, Any] = {}
        objects: dict[str, Any] = {}
        for name, obj in self._objects.items():
            kind = _kind(name, obj)
            values: dict[str, Any] = {}
            if kind == "variable":
                tensors[name] = obj
            elif kind == "generator":
                values = obj.bit_generator.state
            else:
                for key, value in obj.state_dict().items():
                    if isinstance(value, (Tensor, np.ndarray)):
                        tensors[f"{name}/{key}"] = value
                    else:
                        values[key] = value
            objects[name] = {"kind": kind, "type": type(obj).__name__, "values": values}
        header = {"version": FORMAT_VERSION, "save_counter": self.save_counter, "objects": objects,
                  "random_state": random.get_state()}
        if per_rank is not None:
            header["per_rank"] = per_rank
        if replica_streams is not None:  # each replica's own tc.random stream (distribute/streams.py)
            header["replica_random"] = replica_streams
        try:
            text = json.dumps(header)
        except TypeError as exc:
            raise TypeError(f"Checkpoint.save: a state_dict value is neither a tensor nor JSON data: {exc}") from None
        return to_host_arrays(tensors, "Checkpoint.save"), {METADATA_KEY: text}

    # --- restoring -----------------------------------------------------------------------------
    def restore(self, path: str | os.PathLike) -> str:
        """Load every object's state from ``path``, in place; returns the path.

        The file is checked against every object first (missing or unexpected objects and keys,
        shapes, dtypes: all named in one error), so a refused file changes nothing. With several
        MPI processes, every process calls it with rank 0's path and rank 0 reads the file.
        """
        path = Path(path)
        strategy = _strategy_of(self._objects.values())
        rank = None
        if strategy is not None and _multi_process(strategy):
            data = _read_bytes_on_chief(strategy, path)
            arrays, metadata = parse(path, data)
            rank = (strategy.rank, strategy.num_workers)
        else:
            arrays, metadata = read(path)
        self._apply(path, arrays, metadata, rank, strategy)
        return str(path)

    def _apply(self, path: Path, arrays: dict[str, np.ndarray], metadata: Mapping[str, str],
               rank: tuple[int, int] | None = None, strategy: Any = None) -> None:
        header = _own_random_states(path, _checkpoint_header(path, arrays, metadata), rank)
        saved = header["objects"]
        states, problems = {}, []
        problems += [f"object {n!r} is not in the file" for n in self._objects if n not in saved]
        problems += [f"the file has object {n!r}, which this Checkpoint does not" for n in saved if n not in self._objects]
        claimed = set()
        for name, obj in self._objects.items():
            if name not in saved:
                continue
            kind, entry = _kind(name, obj), saved[name]
            if entry.get("kind") != kind:
                problems.append(f"object {name!r} is a {entry.get('kind')} ({entry.get('type')}) in the file, "
                                f"but a {kind} ({type(obj).__name__}) here")
                continue
            state, keys = _object_state(name, kind, entry, arrays)
            claimed |= keys
            states[name] = state
            problems += [f"{name}: {p}" for p in _problems(name, kind, obj, state)]
        claimed |= {k for k in arrays if k.split("/")[0] in saved.keys() - self._objects.keys()}  # named above
        problems += [f"tensor {k!r} belongs to no object" for k in sorted(arrays.keys() - claimed)]
        if problems:
            raise SerializationError(f"{path} does not match this Checkpoint; nothing was restored:\n  " + "\n  ".join(problems))
        for name, obj in self._objects.items():
            kind, state = _kind(name, obj), states[name]
            if kind == "variable":
                obj.assign(state)
            elif kind == "generator":
                obj.bit_generator.state = state
            else:
                obj.load_state_dict(state)
        random.set_state(header["random_state"])
        _restore_replica_streams(path, strategy, header.get("replica_random"))
        self.save_counter = int(header["save_counter"])


class CheckpointManager:
    """Numbered checkpoints of one ``Checkpoint`` in ``directory``, keeping the newest
    ``max_to_keep`` (None: all). Files are ``{checkpoint_name}-{N}.safetensors``; every one
    present is complete, since each is written atomically.
    """

    def __init__(self, checkpoint: Checkpoint, directory: str | os.PathLike, max_to_keep: int | None = 3,
                 checkpoint_name: str = "ckpt") -> None:
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(f"CheckpointManager: max_to_keep must be at least 1 (or None to keep all), got {max_to_keep}")
        if not re.fullmatch(r"[A-Za-z0-9_.]+", checkpoint_name):
            raise ValueError(f"CheckpointManager: checkpoint_name must be letters, digits, '_' or '.', got {checkpoint_name!r}")
        self.checkpoint, self.directory = checkpoint, Path(directory)
        self.max_to_keep, self.checkpoint_name = max_to_keep, checkpoint_name
        self._pattern = re.compile(rf"{re.escape(checkpoint_name)}-(\d+)\.safetensors")

    @property
    def checkpoints(self) -> list[str]:
        """The complete checkpoint files in the directory, oldest (lowest number) first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        numbered = sorted((int(m.group(1)), n) for n in names if (m := self._pattern.fullmatch(n)))
        return [str(self.directory / n) for _, n in numbered]

    @property
    def latest_checkpoint(self) -> str | None:
        """The newest checkpoint file, or None when there is none."""
        found = self.checkpoints
        return found[-1] if found else None

    def save(self, step: int | None = None) -> str:
        """Write checkpoint number ``step`` (default: the checkpoint's save count after this
        save), delete the oldest beyond ``max_to_keep`` and stray temporary files of writers
        that were killed; returns the new file's path."""
        number = self.checkpoint.save_counter + 1 if step is None else int(step)
        if number < 0:
            raise ValueError(f"CheckpointManager.save: step must be non-negative, got {number}")
        chief = _is_chief(self.checkpoint)
        if chief:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise type(exc)(exc.errno, f"cannot create the checkpoint directory {self.directory}: {exc.strerror}") from None
            self._remove_stray_temporaries()
        path = self.checkpoint.save(self.directory / f"{self.checkpoint_name}-{number}.safetensors")
        if chief and self.max_to_keep is not None:
            for old in self.checkpoints[:-self.max_to_keep]:
                if old != path:
                    os.unlink(old)
        return path

    def restore_latest(self) -> str | None:
        """Restore the newest checkpoint and return its path, or return None when there is none.
        With several MPI processes it is a collective: rank 0's newest checkpoint is restored everywhere."""
        strategy = _strategy_of(self.checkpoint._objects.values())
        if strategy is not None and _multi_process(strategy):
            latest = strategy.broadcast_bytes(
                (self.latest_checkpoint or "").encode() if strategy.is_chief else None)
            if not latest:
                return None
            return self.checkpoint.restore(latest.decode())
        latest = self.latest_checkpoint
        return None if latest is None else self.checkpoint.restore(latest)

    def _remove_stray_temporaries(self) -> None:
        # What a killed writer left: ".{name}-{N}.safetensors.<random>.tmp" (serialization.write_atomic).
        prefix = f".{self.checkpoint_name}-"
        for name in os.listdir(self.directory):
            if name.startswith(prefix) and name.endswith(TEMP_SUFFIX):
                try:
                    os.unlink(self.directory / name)
                except FileNotFoundError:
                    pass


# --- helpers ---------------------------------------------------------------------------------
def _kind(name: str, obj: Any) -> str:
    """What kind of object ``obj`` is to a checkpoint; refuses what cannot be restored in place."""
    if isinstance(obj, Variable):
        return "variable"
    if isinstance(obj, np.random.Generator):
        return "generator"
    if callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None)):
        return "state"
    hint = (" (a Tensor cannot be restored in place: use a tc.Variable)" if isinstance(obj, Tensor) else
            " (a Python number cannot be restored in place: use tc.Variable(0, dtype=tc.int64, trainable=False))"
            if isinstance(obj, (int, float)) else "")
    raise TypeError(f"Checkpoint: {name}={type(obj).__name__} cannot be checkpointed; give modules, optimizers, "
                    f"schedulers (state_dict/load_state_dict), tc.Variables or NumPy generators{hint}")


def _checkpoint_header(path: Path, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> dict[str, Any]:
    if METADATA_KEY not in metadata:
        keys = sorted(arrays)
        shown = ", ".join(map(repr, keys[:8])) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
        raise SerializationError(f"{path} is a safetensors file but not a tensorcore checkpoint (no {METADATA_KEY!r} "
                                 f"metadata); its tensors: {shown or 'none'}. Load plain tensors with tc.load and "
                                 "model.load_state_dict")
    try:
        header = json.loads(metadata[METADATA_KEY])
        if header["version"] != FORMAT_VERSION:
            raise SerializationError(f"{path} is a version {header['version']} checkpoint; this tensorcore reads "
                                     f"version {FORMAT_VERSION}")
        header["objects"], header["save_counter"], header["random_state"]  # noqa: B018 - present or KeyError
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SerializationError(f"{path}: its checkpoint metadata is corrupted ({type(exc).__name__}: {exc})") from None
    return header


def _object_state(name: str, kind: str, entry: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> tuple[Any, set[str]]:
    """The saved state of one object, and the tensor keys it takes from the file."""
    if kind == "variable":
        return arrays.get(name), ({name} if name in arrays else set())
    if kind == "generator":
        return entry.get("values"), set()
    prefix = f"{name}/"
    keys = {k for k in arrays if k.startswith(prefix)}
    state = dict(entry.get("values", {}))
    state.update({k[len(prefix):]: arrays[k] for k in keys})
    return state, keys


def _problems(name: str, kind: str, obj: Any, state: Any) -> list[str]:
    """Why ``state`` cannot be loaded into ``obj`` (checked before anything is written)."""
    if kind == "variable":
        if state is None:
            return ["its tensor is not in the file"]
        if state.shape != obj.shape or state.dtype != obj.dtype:
            return [f"is {state.dtype}{list(state.shape)} in the file but {obj.dtype}{list(obj.shape)} here"]
        return []
    if kind == "generator":
        if not isinstance(state, dict) or state.get("bit_generator") != obj.bit_generator.state["bit_generator"]:
            return [f"the file holds no {obj.bit_generator.state['bit_generator']} generator state"]
        return []
    check = getattr(obj, "state_dict_problems", None)
    return list(check(state)) if callable(check) else []


def _strategy_of(objects: Any) -> Any:
    """The ``tensorcore.distribute`` strategy that mirrors any of ``objects``, or None."""
    for obj in objects:
        found = getattr(obj, "strategy", None) or getattr(obj, "_strategy", None)
        if found is None and callable(getattr(obj, "parameters", None)):
            found = next((p.strategy for p in obj.parameters() if hasattr(p, "copies")), None)
        if found is not None:
            return found
    return None


def _multi_process(strategy: Any) -> bool:
    return bool(getattr(strategy, "_multi_process", False))


def _is_chief(checkpoint: Checkpoint) -> bool:
    strategy = _strategy_of(checkpoint._objects.values())
    return strategy is None or strategy.is_chief


def _random_states(objects: Mapping[str, Any], strategy: Any) -> dict[str, Any]:
    """This process's random streams: ``tc.random``'s, each NumPy generator's, its replicas'."""
    return {"random": random.get_state(), "replicas": _replica_streams(strategy),
            "generators": {name: obj.bit_generator.state for name, obj in objects.items() if isinstance(obj, np.random.Generator)}}


def _gather_random_states(strategy: Any, objects: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every rank's :func:`_random_states`, in rank order (a collective)."""
    blobs = strategy.all_gather_bytes(json.dumps(_random_states(objects, strategy)).encode())
    return [json.loads(b) for b in blobs]


def _replica_streams(strategy: Any) -> list[dict[str, Any]] | None:
    """The positions of this process's replicas' own random streams, or None without a strategy."""
    streams = getattr(strategy, "_streams", None)
    return None if streams is None else streams.states()


def _restore_replica_streams(path: Path, strategy: Any, states: list[dict[str, Any]] | None) -> None:
    """The replicas' streams as saved; where the file has none for them (they were about to be
    derived when it was saved), derived afresh from the restored process stream at the next
    ``run``, as they would have been."""
    streams = getattr(strategy, "_streams", None)
    if streams is None:
        return
    if states is not None and len(states) != streams.count:
        warnings.warn(f"{path} holds the random streams of {len(states)} replicas and this process has "
                      f"{streams.count}: the replicas' streams start afresh", stacklevel=5)
        states = None
    if states is None:
        streams.reset()
    else:
        streams.set_states(states)


def _own_random_states(path: Path, header: dict[str, Any], rank: tuple[int, int] | None) -> dict[str, Any]:
    """The header with this rank's own random streams in place of rank 0's, where the file has
    every rank's (saved by as many ranks as restore it); a file from another number of ranks
    gives every rank rank 0's streams, with a warning."""
    per_rank = header.get("per_rank")
    if rank is None:
        return header
    me, workers = rank
    if per_rank is None or len(per_rank) != workers:
        if me == 0:
            warnings.warn(f"{path} was saved by {1 if per_rank is None else len(per_rank)} process(es) and is restored "
                          f"by {workers} MPI ranks: every rank continues rank 0's random streams (tc.random, NumPy "
                          f"generators), and the replicas' own streams are not restored", stacklevel=4)
        return {**header, "replica_random": None}  # one saved stream on every rank: every replica would draw alike
    mine = per_rank[me]
    objects = {name: dict(entry) for name, entry in header["objects"].items()}
    for name, state in mine.get("generators", {}).items():
        if name in objects and objects[name].get("kind") == "generator":
            objects[name]["values"] = state
    return {**header, "objects": objects, "random_state": mine["random"], "replica_random": mine.get("replicas")}


def _read_bytes_on_chief(strategy: Any, path: Path) -> bytes:
    """The file's bytes as rank 0 read them, on every rank; rank 0's failure is raised everywhere."""
    data, error = None, None
    if strategy.is_chief:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            error = exc
    message = strategy.broadcast_bytes(None if error is None else f"{type(error).__name__}: {error}".encode())
    if message is not None:
        if error is not None:
            raise error
        raise SerializationError(f"rank 0 could not read {path}: {message.decode()}")
    return strategy.broadcast_bytes(data)
