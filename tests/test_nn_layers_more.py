"""The layers PyTorch users reach for (Embedding, LayerNorm, AvgPool2d, GELU, Sigmoid, Tanh, Softmax,
ModuleList, CrossEntropyLoss, MSELoss), on every device against NumPy, gradients in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import nn
from tensorcore.nn import functional as F

from support import check_grad, check_op

rng = np.random.default_rng(7)


def _with(layer: nn.Module, **params: tc.Tensor) -> nn.Module:
    """``layer`` with its parameters replaced by plain tensors (so check_grad can watch them)."""
    for name, value in params.items():
        setattr(layer, name, value)
    return layer


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf)(x)


# --- Embedding -------------------------------------------------------------------------------


def test_embedding_looks_up_rows_and_its_weight_gradient_matches_finite_differences(device: str) -> None:
    tc.random.seed(0)
    layer = nn.Embedding(6, 3, device=device)
    assert layer.weight.shape == (6, 3) and layer.weight.device == tc.Device(device)
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    idx = np.array([[0, 5, 2], [2, 2, 1]])
    w = rng.standard_normal((6, 3))
    check_op(lambda i, w: _with(layer, weight=w)(i), lambda i, w: w[i], [idx, w], device)
    check_grad(lambda i, w: _with(layer, weight=w)(i), [idx, w], device)


def test_embedding_padding_idx_starts_at_zero_and_gets_no_gradient(device: str) -> None:
    layer = nn.Embedding(5, 2, padding_idx=-1, device=device)  # negative counts from the end, as in PyTorch
    assert layer.padding_idx == 4
    np.testing.assert_array_equal(layer.weight.numpy()[4], [0.0, 0.0])
    idx = np.array([4, 1, 4, 0])
    w = rng.standard_normal((5, 2))
    check_op(lambda i, w: _with(layer, weight=w)(i), lambda i, w: w[i], [idx, w], device)  # the row's values
    check_grad(lambda i, w: _with(layer, weight=w)(i), [np.array([3, 1, 3, 0]), w], device)  # other rows
    table = rng.standard_normal((5, 2)).astype(np.float32)
    pretrained = nn.Embedding.from_pretrained(tc.asarray(table, device=device), freeze=False, padding_idx=4)
    with tc.GradientTape() as tape:
        out = pretrained(tc.asarray(idx, device=device))
        total = tc.sum(out * 3.0)
    np.testing.assert_array_equal(out.numpy(), table[idx])  # a pretrained padding row is kept, as in PyTorch
    (g,) = tape.gradient(total, [pretrained.weight])
    np.testing.assert_array_equal(g.numpy(), [[3, 3], [3, 3], [0, 0], [0, 0], [0, 0]])  # row 4: none


def test_embedding_from_pretrained_freezes_by_default_and_keeps_the_table(device: str) -> None:
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    frozen = nn.Embedding.from_pretrained(tc.asarray(table, device=device))
    assert frozen.parameters() == [] and list(frozen.state_dict()) == ["weight"]
    assert frozen.weight.device == tc.Device(device)
    np.testing.assert_array_equal(frozen(tc.asarray(np.array([3, 0]), device=device)).numpy(), table[[3, 0]])
    trainable = nn.Embedding.from_pretrained(table, freeze=False, device=device)
    assert [n for n, _ in trainable.named_parameters()] == ["weight"]
    assert repr(nn.Embedding(10, 4, padding_idx=0)) == "Embedding(10, 4, padding_idx=0)"


@pytest.mark.parametrize("kwargs, match", [
    ({"max_norm": 1.0}, "max_norm is not supported"),
    ({"sparse": True}, "sparse is not supported"),
    ({"padding_idx": 7}, r"padding_idx must be an int in \[-5, 5\)"),
    ({"_weight": np.zeros((2, 2))}, r"_weight must have shape \(5, 3\)"),
])
def test_embedding_rejects_what_it_does_not_support(kwargs: dict, match: str) -> None:
    with pytest.raises(tc.OpError, match=match):
        nn.Embedding(5, 3, **kwargs)


# --- LayerNorm, AvgPool2d ----------------------------------------------------------------------


def _layer_norm_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    axes = tuple(range(x.ndim - w.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def test_layer_norm_matches_numpy_with_gradients(device: str) -> None:
    layer = nn.LayerNorm((3, 4), device=device)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"] and layer.weight.shape == (3, 4)
    np.testing.assert_array_equal(layer.weight.numpy(), np.ones((3, 4)))
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    check_op(lambda x, w, b: _with(layer, weight=w, bias=b)(x), _layer_norm_ref, [x, w, b], device, rtol=1e-10)
    check_grad(lambda x, w, b: _with(layer, weight=w, bias=b)(x), [x, w, b], device)
    plain = nn.LayerNorm(4, elementwise_affine=False, device=device)
    assert plain.parameters() == [] and repr(plain) == "LayerNorm((4,), eps=1e-05, elementwise_affine=False)"
    check_op(plain, lambda x: _layer_norm_ref(x, np.ones(4), np.zeros(4)), [x], device, rtol=1e-10)


def _avg_pool_ref(x: np.ndarray, k: int, s: int, p: int, include_pad: bool, divisor: int | None) -> np.ndarray:
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    inside = np.pad(np.ones((h, w)), p)
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * s:i * s + k, j * s:j * s + k].sum(axis=(2, 3))
            count = divisor or (k * k if include_pad else inside[i * s:i * s + k, j * s:j * s + k].sum())
            out[:, :, i, j] = window / count
    return out


@pytest.mark.parametrize("include_pad, divisor", [(True, None), (False, None), (True, 3)])
def test_avg_pool2d_matches_numpy_with_pytorch_options(device: str, include_pad: bool, divisor: int | None) -> None:
    layer = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=include_pad, divisor_override=divisor)
    x = rng.standard_normal((2, 2, 5, 6))
    check_op(layer, lambda x: _avg_pool_ref(x, 3, 2, 1, include_pad, divisor), [x], device, rtol=1e-10)
    check_grad(layer, [x], device)
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=None, padding=0)"
    with pytest.raises(tc.OpError, match="ceil_mode=True is not supported"):
        nn.AvgPool2d(2, ceil_mode=True)


# --- activations -------------------------------------------------------------------------------


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("layer, reference", [
    (nn.GELU(), lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    (nn.GELU(approximate="tanh"), _gelu_tanh),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.Softmax(dim=1), lambda x: _softmax(x, 1)),
    (nn.Softmax(dim=-1), lambda x: _softmax(x, -1)),
], ids=["gelu", "gelu-tanh", "sigmoid", "tanh", "softmax-1", "softmax-last"])
def test_activation_layers_match_numpy_with_gradients(device: str, layer: nn.Module, reference) -> None:
    x = rng.standard_normal((3, 4, 2)) * 2
    check_op(layer, reference, [x], device, rtol=1e-7, atol=1e-9)
    check_grad(layer, [x], device)


def test_activation_reprs_and_bad_arguments() -> None:
    assert repr(nn.GELU()) == "GELU(approximate='none')" and repr(nn.Tanh()) == "Tanh()"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)" and repr(nn.Sigmoid()) == "Sigmoid()"
    with pytest.raises(tc.OpError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("fast")
    with pytest.raises(tc.OpError, match="dim must be an int"):
        nn.Softmax(dim=1.5)


def test_softmax_without_dim_follows_pytorch_legacy_choice_and_warns() -> None:
    x = rng.standard_normal((2, 3))
    with pytest.warns(UserWarning, match="pass dim explicitly"):
        out = nn.Softmax()(tc.asarray(x))
    np.testing.assert_allclose(out.numpy(), _softmax(x, 1))  # 2-D: dim 1


# --- ModuleList ----------------------------------------------------------------------------------


class _Stack(nn.Module):
    def __init__(self, device: str) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(3, 3, device=device) for _ in range(2)])
        self.blocks.append(nn.LayerNorm(3, device=device))

    def forward(self, x: tc.Tensor) -> tc.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def test_module_list_registers_its_modules_with_dotted_names(device: str) -> None:
    model = _Stack(device)
    names = ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "blocks.2.weight", "blocks.2.bias"]
    assert [n for n, _ in model.named_parameters()] == names
    assert list(model.state_dict()) == names and len(model.parameters()) == 6
    out = model(tc.ones((2, 3), device=device))
    assert out.shape == (2, 3) and out.device == tc.Device(device)
    assert "(blocks): ModuleList(\n    (0): Linear(in_features=3, out_features=3, bias=True)" in repr(model)
    with tc.GradientTape() as tape:
        loss = tc.sum(model(tc.ones((2, 3), device=device)))
    assert all(g is not None for g in tape.gradient(loss, model.parameters()))


def test_module_list_behaves_like_a_list() -> None:
    a, b, c, d = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.GELU()
    ml = nn.ModuleList([a, b])
    ml.extend([c])
    assert len(ml) == 3 and list(ml) == [a, b, c] and ml[-1] is c and ml[0] is a
    assert isinstance(ml[1:], nn.ModuleList) and list(ml[1:]) == [b, c]
    ml.insert(1, d)
    assert list(ml) == [a, d, b, c] and [n for n, _ in ml.named_modules()][1:] == ["0", "1", "2", "3"]
    del ml[0]
    assert list(ml) == [d, b, c] and list(ml._modules) == ["0", "1", "2"]
    ml[2] = a
    assert ml[2] is a and not hasattr(ml, "3")
    ml += [nn.ReLU()]
    assert len(ml) == 4
    with pytest.raises(IndexError, match="index 4 is out of range for 4 modules"):
        ml[4]
    with pytest.raises(TypeError, match="entries must be nn.Module instances, got int"):
        ml.append(3)
    with pytest.raises(NotImplementedError, match="ModuleList has no forward"):
        ml(tc.ones((1,)))


def test_module_list_moves_with_its_parent(device: str) -> None:
    model = _Stack("cpu").to_device(device)
    assert all(p.device == tc.Device(device) for p in model.parameters())


# --- losses ----------------------------------------------------------------------------------------


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _ce_ref(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, ignore: int | None = None,
            smoothing: float = 0.0, reduction: str = "mean") -> np.ndarray:
    """PyTorch's cross_entropy for class indices (nll_loss plus the label-smoothing term)."""
    n, c = x.shape
    logp = _log_softmax(x)
    keep = np.ones(n) if ignore is None else (y != ignore).astype(float)
    safe = np.where(keep > 0, y, 0)
    wc = np.ones(c) if w is None else w
    nll = -logp[np.arange(n), safe] * wc[safe] * keep
    smooth = -(logp * wc).sum(axis=1) * keep
    per = (1 - smoothing) * nll + smoothing / c * smooth
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.sum() / (wc[safe] * keep).sum()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"weight": True}, {"ignore_index": -100}, {"label_smoothing": 0.2},
                                     {"weight": True, "ignore_index": 1, "label_smoothing": 0.1}],
                         ids=["plain", "weight", "ignore", "smoothing", "all"])
def test_cross_entropy_loss_matches_pytorch_formula(device: str, reduction: str, options: dict) -> None:
    x = rng.standard_normal((5, 4))
    y = np.array([0, 3, -100 if options.get("ignore_index") == -100 else 1, 1, 2])
    w = rng.uniform(0.5, 2.0, 4) if options.get("weight") else None
    kwargs = {k: v for k, v in options.items() if k != "weight"}
    loss = nn.CrossEntropyLoss(None if w is None else tc.asarray(w, device=device), reduction=reduction, **kwargs)
    expected = _ce_ref(x, y, w, options.get("ignore_index"), options.get("label_smoothing", 0.0), reduction)
    check_op(lambda x, y: loss(x, y), lambda x, y: expected, [x, y], device, rtol=1e-10)
    check_grad(lambda x, y: loss(x, y), [x, y], device)


def test_cross_entropy_loss_with_class_probabilities(device: str) -> None:
    x = rng.standard_normal((3, 4))
    t = rng.dirichlet(np.ones(4), 3)
    w = rng.uniform(0.5, 2.0, 4)
    loss = nn.CrossEntropyLoss(tc.asarray(w, device=device), label_smoothing=0.1)
    target = t * 0.9 + 0.1 / 4
    expected = -(_log_softmax(x) * target * w).sum(axis=1).mean()  # PyTorch divides by N for probabilities
    check_op(lambda x, t: loss(x, t), lambda x, t: expected, [x, t], device, rtol=1e-10)
    check_grad(lambda x, t: loss(x, t), [x, t], device, wrt=[0])


def test_cross_entropy_loss_is_one_fused_op_without_options_and_rejects_bad_settings(device: str) -> None:
    x = tc.asarray(rng.standard_normal((4, 3)).astype(np.float32), device=device)
    y = tc.asarray(np.array([0, 2, 1, 1]), device=device)
    tc.reset_placement_stats()
    nn.CrossEntropyLoss()(x, y)
    assert sum(tc.placement_stats()["ops_per_device"].values()) == 1
    with pytest.raises(tc.OpError, match="label_smoothing must be a number in"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(tc.OpError, match="reduction must be 'mean', 'sum' or 'none'"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(tc.OpError, match=r"weight must have shape \(3,\)"):
        nn.CrossEntropyLoss(tc.ones((4,), device=device))(x, y)
    with pytest.raises(tc.OpError, match="ignore_index applies to class-index labels"):
        F.cross_entropy(x, tc.ones((4, 3), device=device), ignore_index=0)
    assert repr(nn.CrossEntropyLoss(ignore_index=-100)) == "CrossEntropyLoss(reduction='mean', ignore_index=-100)"


def test_cross_entropy_loss_weight_is_a_buffer_that_moves(device: str) -> None:
    loss = nn.CrossEntropyLoss(tc.ones((3,)))
    assert loss.parameters() == [] and list(loss.state_dict()) == ["weight"]
    loss.to_device(device)
    assert loss.weight.device == tc.Device(device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_numpy(device: str, reduction: str) -> None:
    loss = nn.MSELoss(reduction)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    check_op(loss, lambda a, b: reduce((a - b) ** 2), [a, b], device, rtol=1e-10)
    check_grad(loss, [a, b], device)
    assert repr(loss) == f"MSELoss(reduction={reduction!r})"
