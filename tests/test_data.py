"""tensorcore.data: ``DataLoader`` (shuffling, batching, prefetching to the device) and ``batches``."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import data
from tensorcore.data import DataLoader
from tensorcore.device import Device, thread_default

X = np.arange(30, dtype=np.float32).reshape(10, 3)
Y = np.arange(10, dtype=np.int64) * 10


def _loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tensorcore.data.DataLoader"]


def _no_loader_thread_within(seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _loader_threads() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    return not _loader_threads()


class Recording:
    """A dataset that records which rows are read, in which thread, and when (by a counter)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.events: list[tuple[str, int, str]] = []
        self.fail_at = fail_at

    def __len__(self) -> int:
        return len(X)

    def __getitem__(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.fail_at is not None and self.fail_at in rows:
            raise KeyError(f"row {self.fail_at} is corrupt")
        self.events.append(("read", int(rows[0]), threading.current_thread().name))
        return X[rows], Y[rows]


def test_batches_of_a_tuple_of_arrays_on_the_device(device: str) -> None:
    loader = DataLoader((X, Y), batch_size=4, device=device)
    assert len(loader) == 3
    got = list(loader)
    assert [xb.shape for xb, _ in got] == [(4, 3), (4, 3), (2, 3)]
    for k, (xb, yb) in enumerate(got):
        assert xb.device == tc.Device(device) and yb.device == tc.Device(device) and yb.dtype == np.int64
        np.testing.assert_array_equal(xb.numpy(), X[4 * k:4 * k + 4])
        np.testing.assert_array_equal(yb.numpy(), Y[4 * k:4 * k + 4])
    single = DataLoader(X, batch_size=4, drop_last=True, device=device)
    assert len(single) == 2 and [b.shape for b in single] == [(4, 3), (4, 3)]
    assert all(isinstance(b, tc.Tensor) for b in single)


def test_no_device_means_the_iterating_threads_current_device(device: str) -> None:
    loader = DataLoader((X, Y), batch_size=5)
    with tc.device(device):
        assert all(xb.device == tc.Device(device) for xb, _ in loader)
    seen = []

    def replica() -> None:
        with thread_default(Device(device)):
            seen.extend(xb.device for xb, _ in loader)

    worker = threading.Thread(target=replica)
    worker.start()
    worker.join()
    assert seen == [tc.Device(device)] * 2


def test_shuffle_is_a_new_permutation_each_epoch_reproducible_from_seed() -> None:
    def epoch(loader: DataLoader) -> np.ndarray:
        return np.concatenate([yb.numpy() for _, yb in loader]) // 10

    a, b = DataLoader((X, Y), batch_size=3, shuffle=True, seed=5), DataLoader((X, Y), batch_size=3, shuffle=True, seed=5)
    first, second = epoch(a), epoch(a)
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert not np.array_equal(first, second)  # a fresh shuffle per epoch
    np.testing.assert_array_equal(epoch(b), first)  # the same seed, the same sequence of epochs
    np.testing.assert_array_equal(epoch(b), second)
    unseeded = DataLoader((X, Y), batch_size=3, shuffle=True)
    tc.random.seed(11)
    one = epoch(unseeded)
    tc.random.seed(11)
    np.testing.assert_array_equal(epoch(unseeded), one)  # tc.random.seed controls it
    for xb, yb in DataLoader((X, Y), batch_size=4, shuffle=True, seed=1):  # rows stay together
        np.testing.assert_array_equal(xb.numpy()[:, 0], yb.numpy() // 10 * 3)


def test_the_next_batch_is_read_and_uploaded_before_the_consumer_asks_for_it(device: str) -> None:
    dataset = Recording()
    it = iter(DataLoader(dataset, batch_size=2, device=device, prefetch=1))
    for k in range(4):
        xb, _ = next(it)
        np.testing.assert_array_equal(xb.numpy(), X[2 * k:2 * k + 2])
        reads = [row for _, row, _ in dataset.events]
        assert 2 * (k + 1) in reads, f"batch {k + 1} was not read while batch {k} was handed out"
        assert it.prefetched == 1  # and its upload is already enqueued
    assert {thread for _, _, thread in dataset.events} == {"tensorcore.data.DataLoader"}
    next(it)  # the last batch: nothing left to prefetch
    assert it.prefetched == 0
    with pytest.raises(StopIteration):
        next(it)
    assert _no_loader_thread_within(2.0)


def test_prefetch_zero_reads_on_demand_in_the_consumers_thread() -> None:
    dataset = Recording()
    it = iter(DataLoader(dataset, batch_size=5, prefetch=0))
    next(it)
    assert [row for _, row, _ in dataset.events] == [0] and it.prefetched == 0
    assert dataset.events[0][2] == threading.current_thread().name and not _loader_threads()


def test_an_error_while_gathering_reaches_the_consumer_at_that_batch(device: str) -> None:
    it = iter(DataLoader(Recording(fail_at=6), batch_size=2, device=device))
    got = [next(it)[1].numpy() // 10 for _ in range(3)]
    assert [list(g) for g in got] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(KeyError, match="row 6 is corrupt"):
        next(it)
    with pytest.raises(StopIteration):
        next(it)
    assert _no_loader_thread_within(2.0)
    with pytest.raises(KeyError, match="row 0 is corrupt"):  # failing at the first batch
        next(iter(DataLoader(Recording(fail_at=0), batch_size=2)))


def test_abandoning_an_epoch_halfway_leaves_no_thread_running(device: str) -> None:
    loader = DataLoader((X, Y), batch_size=1, device=device, prefetch=2)
    for k, _ in enumerate(loader):
        if k == 2:
            assert len(_loader_threads()) == 1  # the producer is blocked on its full queue
            break
    assert _no_loader_thread_within(2.0)
    with iter(loader) as it:
        next(it)
    assert not _loader_threads()  # closed by the with block, joined at once
    it = iter(loader)
    next(it)
    it.close()
    assert not _loader_threads()
    with pytest.raises(StopIteration):
        next(it)


def test_cpu_batches_never_share_a_buffer_the_dataset_reuses() -> None:
    class Reusing:
        buffer = np.empty((2, 3), np.float32)

        def __len__(self) -> int:
            return len(X)

        def __getitem__(self, rows: np.ndarray) -> np.ndarray:
            self.buffer[: len(rows)] = X[rows]
            return self.buffer[: len(rows)]

    batches = list(DataLoader(Reusing(), batch_size=2, device="cpu", prefetch=3))
    for k, b in enumerate(batches):
        np.testing.assert_array_equal(b.numpy(), X[2 * k:2 * k + 2])


@pytest.mark.parametrize("args, kwargs, error, match", [
    (((X, Y[:5]),), {}, ValueError, "array 1 has 5 rows, array 0 has 10"),
    ((X,), {"batch_size": 0}, ValueError, "batch_size must be a positive int"),
    ((X,), {"prefetch": -1}, ValueError, "prefetch must be an int >= 0"),
    ((X,), {"seed": 1.5}, ValueError, "seed must be an int or None"),
    (([X, 3],), {}, TypeError, "entry 1 must be a NumPy array"),
    ((42,), {}, TypeError, "expected a NumPy array, a tuple of arrays, or a dataset"),
    ((X,), {"device": "cdua:0"}, ValueError, "did you mean .cuda."),
])
def test_bad_arguments_are_named(args: tuple, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        DataLoader(*args, **kwargs)


def test_a_dataset_returning_the_wrong_number_of_rows_is_named() -> None:
    class Short:
        def __len__(self) -> int:
            return 4

        def __getitem__(self, rows: np.ndarray) -> np.ndarray:
            return X[:1]

    with pytest.raises(ValueError, match=r"returned shape \(1, 3\) for part 0 of a batch of 2 rows"):
        next(iter(DataLoader(Short(), batch_size=2)))
    assert _no_loader_thread_within(2.0)


def test_batches_keeps_working(device: str) -> None:
    out = list(data.batches([X, Y], 4, shuffle=False, device=device))
    assert len(out) == 3 and out[0][0].device == tc.Device(device)
    np.testing.assert_array_equal(out[2][1].numpy(), Y[8:])
