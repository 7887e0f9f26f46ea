"""nn.Module bookkeeping and the layers, on every device."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import nn


def test_module_tracks_parameters_buffers_and_submodules_in_order(device: str) -> None:
    model = nn.Sequential(nn.Linear(4, 3, device=device), nn.ReLU(), nn.BatchNorm2d(3, device=device))
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [n for n, _ in model.named_buffers()] == ["2.running_mean", "2.running_var"]
    assert len(model.parameters()) == 4 and len(model) == 3 and isinstance(model[1], nn.ReLU)
    assert all(p.device == tc.Device(device) for p in model.parameters())
    assert set(model.state_dict()) == set(names) | {"2.running_mean", "2.running_var"}


def test_shared_parameter_is_listed_once() -> None:
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, layer)
    assert len(model.parameters()) == 2


def test_train_and_eval_switch_every_submodule() -> None:
    model = nn.Sequential(nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.5)))
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_linear_matches_numpy_and_has_pytorch_shapes(device: str) -> None:
    layer = nn.Linear(5, 3, device=device)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    bound = 1 / np.sqrt(5)
    assert np.all(np.abs(layer.weight.numpy()) <= bound)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    out = layer(tc.asarray(x, device=device))
    np.testing.assert_allclose(out.numpy(), x @ layer.weight.numpy().T + layer.bias.numpy(), rtol=1e-5, atol=1e-6)


def test_conv_pool_flatten_shapes(device: str) -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, device=device), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    out = model(tc.zeros((2, 1, 8, 8), device=device))
    assert out.shape == (2, 64) and out.device == tc.Device(device)


def test_dropout_is_identity_in_eval_and_scales_in_training(device: str) -> None:
    tc.random.seed(0)
    layer = nn.Dropout(0.5)
    x = tc.ones((1000,), device=device)
    y = layer(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), np.ones(1000))


def test_batchnorm_updates_running_statistics_only_in_training(device: str) -> None:
    bn = nn.BatchNorm2d(2, momentum=0.5, device=device)
    x_np = np.random.default_rng(1).standard_normal((4, 2, 3, 3)).astype(np.float32) * 3 + 1
    bn(tc.asarray(x_np, device=device))
    mean, var = x_np.mean(axis=(0, 2, 3)), x_np.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.5 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.5 + 0.5 * var, rtol=1e-5)
    bn.eval()
    before = bn.running_mean.numpy().copy()
    bn(tc.asarray(x_np, device=device))
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)


def test_module_needs_super_init() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            self.w = 1

    with pytest.raises(AttributeError, match="must call super"):
        Bad()


def test_a_few_steps_of_training_lower_the_loss(device: str) -> None:
    tc.random.seed(0)
    rng = np.random.default_rng(0)
    x = tc.asarray(rng.standard_normal((64, 8)).astype(np.float32), device=device)
    y = tc.asarray((rng.standard_normal(64) > 0).astype(np.int64), device=device)
    model = nn.Sequential(nn.Linear(8, 16, device=device), nn.ReLU(), nn.Linear(16, 2, device=device))
    opt = tc.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        with tc.GradientTape() as tape:
            loss = nn.functional.cross_entropy(model(x), y)
        opt.step(tape.gradient(loss, model.parameters()))
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
