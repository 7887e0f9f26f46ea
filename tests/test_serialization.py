"""``tc.save``/``tc.load`` (safetensors), ``Module.state_dict``/``load_state_dict``, and copying
and pickling tensors and modules, on every device."""

from __future__ import annotations

import copy
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import tensorcore as tc
import tensorcore.serialization
from tensorcore import nn


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "w": rng.standard_normal((3, 4)).astype(np.float32),
        "d": rng.standard_normal(5),  # float64
        "h": rng.standard_normal(6).astype(np.float16),
        "i": np.arange(7, dtype=np.int64),
        "u": np.arange(4, dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "scalar": np.array(2.5, np.float32),  # 0-d stays 0-d
        "empty": np.zeros((0, 3), np.float32),
    }


def test_save_then_load_round_trips_every_dtype_between_devices(device: str, tmp_path: Path) -> None:
    arrays = _arrays()
    path = tmp_path / "t.safetensors"
    tc.save({k: tc.asarray(v, device=device) for k, v in arrays.items()}, path, metadata={"note": "hi"})
    for target in {device, "cpu"}:
        loaded = tc.load(path, device=target)
        assert set(loaded) == set(arrays)
        for k, v in arrays.items():
            assert loaded[k].device == tc.Device(target)
            assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape, k
            np.testing.assert_array_equal(loaded[k].numpy(), v)
    # An ordinary safetensors file: other tools read it, and the metadata is there.
    plain = safetensors.numpy.load_file(str(path))
    np.testing.assert_array_equal(plain["w"], arrays["w"])
    assert tc.serialization.load_metadata(path)["note"] == "hi"


def test_load_defaults_to_the_current_device_and_reads_foreign_files(device: str, tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"x": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(path))
    with tc.device(device):
        x = tc.load(path)["x"]
    assert x.device == tc.Device(device)
    np.testing.assert_array_equal(x.numpy(), np.arange(6).reshape(2, 3))


def test_save_replaces_a_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    tc.save({"a": tc.zeros(3)}, path)
    tc.save({"a": tc.ones(4)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]
    np.testing.assert_array_equal(tc.load(path)["a"].numpy(), np.ones(4))


def test_save_refuses_bad_arguments_naming_them(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"'b' \(list\)"):
        tc.save({"a": tc.zeros(1), "b": [1, 2]}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="dict of name -> tensor"):
        tc.save([tc.zeros(1)], tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="strings to strings"):
        tc.save({"a": tc.zeros(1)}, tmp_path / "x.safetensors", metadata={"n": 1})
    with pytest.raises(ValueError, match="tensorcore's own"):
        tc.save({"a": tc.zeros(1)}, tmp_path / "x.safetensors", metadata={"tensorcore.crc32": "{}"})
    assert list(tmp_path.iterdir()) == []


def test_save_into_a_missing_or_unusable_directory_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for target in (tmp_path / "missing" / "x.safetensors", blocker / "x.safetensors"):
        with pytest.raises(OSError, match=str(target.parent)):
            tc.save({"a": tc.zeros(1)}, target)


def _good_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.safetensors"
    tc.save({"w": tc.asarray(np.arange(1000, dtype=np.float32)), "b": tc.ones(3)}, path)
    return path


@pytest.mark.parametrize("cut", [0, 5, 8, 40, -1, -100])
def test_a_truncated_file_is_named_as_truncated(tmp_path: Path, cut: int) -> None:
    data = _good_file(tmp_path).read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:len(data) + cut])
    with pytest.raises(tc.SerializationError, match=r"cut\.safetensors.*(truncated|too short)"):
        tc.load(bad)


def test_corrupted_data_fails_its_checksum_naming_the_tensor(tmp_path: Path) -> None:
    data = bytearray(_good_file(tmp_path).read_bytes())
    data[-5] ^= 0xFF  # a bit flip in the last tensor stored
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(tc.SerializationError, match=r"flipped\.safetensors is corrupted: the data of '(w|b)'"):
        tc.load(bad)


def test_a_corrupted_header_is_named(tmp_path: Path) -> None:
    data = bytearray(_good_file(tmp_path).read_bytes())
    data[9] = ord("#")  # inside the JSON header
    bad = tmp_path / "header.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(tc.SerializationError, match="header.safetensors.*not JSON"):
        tc.load(bad)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(tc.SerializationError, match="not a safetensors file"):
        tc.load(huge)


def test_pickles_and_other_formats_are_refused_without_running_anything(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):
            return (Path(tmp_path / "pwned").touch, ())

    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(tc.SerializationError, match="pickle.*never loads pickles"):
        tc.load(pkl)
    assert not (tmp_path / "pwned").exists()
    pt = tmp_path / "model.pt"
    with zipfile.ZipFile(pt, "w") as z:
        z.writestr("archive/data.pkl", b"x")
    with pytest.raises(tc.SerializationError, match="zip archive"):
        tc.load(pt)
    npy = tmp_path / "a.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(tc.SerializationError, match="NumPy .npy"):
        tc.load(npy)


def test_missing_files_and_directories_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        tc.load(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        tc.load(tmp_path)


# --- modules ---------------------------------------------------------------------------------
def _model(device: str) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3, device=device), nn.ReLU(), nn.BatchNorm2d(3, device=device))


def test_state_dict_round_trips_through_a_file_across_devices(device: str, tmp_path: Path) -> None:
    tc.random.seed(1)
    source = _model("cpu")
    source[2].running_mean.assign(tc.asarray([1.0, 2.0, 3.0]))
    tc.save(source.state_dict(), tmp_path / "m.safetensors")
    tc.random.seed(2)
    target = _model(device)
    target.load_state_dict(tc.load(tmp_path / "m.safetensors", device="cpu"))  # cpu tensors into a model on device
    for key, value in source.state_dict().items():
        got = target.state_dict()[key]
        assert got.device == tc.Device(device), key
        np.testing.assert_array_equal(got.numpy(), value.numpy())
    # NumPy arrays load too
    target.load_state_dict({k: v.numpy() * 0 for k, v in source.state_dict().items()})
    assert not target[0].weight.numpy().any()


def test_load_state_dict_names_every_problem_and_changes_nothing(device: str) -> None:
    model = _model(device)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    state = {k: v.numpy() + 1 for k, v in model.state_dict().items()}
    del state["0.bias"]
    state["0.weight"] = np.zeros((3, 5), np.float32)
    state["2.running_var"] = state["2.running_var"].astype(np.float64)
    state["extra.weight"] = np.zeros(2, np.float32)
    state["2.weight"] = "nonsense"
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    for expected in ("missing key '0.bias'", "unexpected key 'extra.weight'", "'0.weight' is float32[3, 5]",
                     "'2.running_var' is float64[3]", "'2.weight' is a str", "5 problem(s)"):
        assert expected in message, (expected, message)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])  # nothing was written
    # Without strict, the keys that match load and the others are reported.
    del state["0.weight"], state["2.running_var"], state["2.weight"]
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.weight", "0.bias", "2.weight", "2.running_var"]
    assert result.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(model.state_dict()["2.bias"].numpy(), before["2.bias"] + 1)


def test_deepcopy_copies_tensors_variables_and_modules_on_their_device(device: str) -> None:
    t = tc.arange(5, device=device)
    t2 = copy.deepcopy(t)
    assert t2 is not t and t2.device == t.device
    np.testing.assert_array_equal(t2.numpy(), np.arange(5))
    model = _model(device)
    clone = copy.deepcopy(model)
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert clone[0].weight is clone.parameters()[0] and clone[0].weight is not model[0].weight
    assert clone[0].weight.name == "weight" and clone[0].weight.trainable
    assert not clone[2].running_mean.trainable and clone[2].running_mean.device == tc.Device(device)
    clone[0].weight.assign(tc.zeros((3, 4), device=device))
    assert model[0].weight.numpy().any()  # independent buffers
    x = tc.asarray(np.ones((2, 4), np.float32), device=device)
    with tc.GradientTape() as tape:  # the copy trains like the original
        loss = tc.sum(clone[0](x))
    assert tape.gradient(loss, [clone[0].weight])[0] is not None


def test_pickling_a_tensor_or_model_points_to_tc_save(device: str) -> None:
    for obj in (tc.ones(3, device=device), tc.Variable(tc.ones(3, device=device)), _model(device)):
        with pytest.raises(TypeError, match=r"cannot be pickled.*tc\.save"):
            pickle.dumps(obj)


def test_a_header_whose_length_looks_like_a_pickle_opcode_still_loads(tmp_path: Path) -> None:
    # A header of 0x280 bytes starts the file with b"\x80\x02", as a pickle does: it is still safetensors.
    path = tmp_path / "t.safetensors"
    for pad in range(2000):
        tc.save({"x": tc.ones(3)}, path, metadata={"pad": "p" * pad})
        if path.read_bytes()[:2] == b"\x80\x02":
            break
    else:
        pytest.fail("no padding gave a header of 0x280 bytes")
    np.testing.assert_array_equal(tc.load(path)["x"].numpy(), np.ones(3))
