"""Each replica's own random stream (``tc.random``, dropout) inside ``strategy.run``.

Replicas run in threads: drawing from the one process-wide generator, they would race (a
replica tracing its step rewinds the generator while another draws: both replicas then got
the same dropout mask, or the host stream went back), and which replica got which numbers
would depend on thread timing. So each replica draws from a generator of its own, derived
from the process's generator (``tc.random.seed``) and the replica's id: the streams differ
between replicas, as their batches do, and are the same from run to run for one seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.ops import sampling


class ReplicaStreams:
    """The generators of one process's replicas, replicas ``first_replica_id`` onwards."""

    def __init__(self, first_replica_id: int, count: int) -> None:
        self.first_replica_id, self.count = first_replica_id, count
        self.generators: list[np.random.Generator] = []
        self._seeds = -1  # sampling.seed_count() when they were derived

    def refresh(self) -> None:
        """Derive the generators again if ``tc.random.seed`` was called since (or never yet);
        in the calling thread, before the replicas run, so one draw from the process's
        generator roots them all."""
        if self._seeds == sampling.seed_count() and self.generators:
            return
        root = int(sampling.generator().integers(2**63))
        self.generators = [np.random.default_rng([root, self.first_replica_id + i]) for i in range(self.count)]
        self._seeds = sampling.seed_count()

    def of(self, local_index: int) -> np.random.Generator | None:
        """Replica ``local_index``'s generator (None before the first refresh)."""
        return self.generators[local_index] if self.generators else None

    def states(self) -> list[dict[str, Any]] | None:
        """Every generator's position (what checkpoints save); None where the next ``run`` will
        derive them afresh (never derived yet, or a seed came since): deriving them here would
        move the process's stream."""
        current = self.generators and self._seeds == sampling.seed_count()
        return [g.bit_generator.state for g in self.generators] if current else None

    def reset(self) -> None:
        """Let the next ``run`` derive the generators from the process's stream (a checkpoint
        saved them as :meth:`states` None, or holds another number of replicas)."""
        self.generators = []

    def set_states(self, states: list[dict[str, Any]]) -> None:
        """Generators at positions from :meth:`states` (a checkpoint's), current for the latest
        seed; the process's own stream is not touched."""
        if len(states) != self.count:
            raise ValueError(f"the checkpoint holds {len(states)} replica random streams, this process has "
                             f"{self.count} replicas")
        generators = [np.random.default_rng() for _ in states]
        for g, state in zip(generators, states):
            g.bit_generator.state = state
        self.generators, self._seeds = generators, sampling.seed_count()
