"""The rewrite that folds a weight gradient into its plain SGD step
(``tensorcore/graph/rewrite_sgd_gemm.py``, op ``linear_weight_sgd_step``): on every device a
traced training step gives the unfused step's parameters bit for bit, it fires only for plain
SGD, only where the fused node reads what the two nodes read, and a step with a bad batch
writes nothing."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
import tensorcore.graph.rewrite_sgd_gemm as rewrite
from tensorcore import placement
from tensorcore.nn import functional as F

KEY = "weight gradient+sgd_step -> one GEMM"
SIZES = (12, 16, 16, 5)


@pytest.fixture(autouse=True)
def _on_cpu_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pass fires on cpu only when asked (it measured no faster there): ask, to check its
    bits on cpu too."""
    original = rewrite.weight_gradient_into_sgd
    monkeypatch.setattr(rewrite, "weight_gradient_into_sgd", lambda graph: original(graph, on_cpu=True))


def _params(device: str, seed: int = 3) -> list[tc.Variable]:
    rng = np.random.default_rng(seed)
    out = []
    for i, o in zip(SIZES[:-1], SIZES[1:]):
        out += [tc.Variable(rng.standard_normal((o, i)).astype(np.float32) / 4, device=device),
                tc.Variable(rng.standard_normal(o).astype(np.float32) / 4, device=device)]
    return out


def _batch(device: str, rows: int = 6) -> tuple[tc.Tensor, tc.Tensor]:
    # 6 rows: the second layer's gradient and input (6 x 16 each) are smaller than its weight
    # gradient (16 x 16), so its update may keep them alive; the last layer's (6 x 5, 6 x 16
    # against 5 x 16) are not, so it is left alone
    rng = np.random.default_rng(5)
    x = tc.asarray(rng.standard_normal((rows, SIZES[0])).astype(np.float32), device=device)
    y = tc.asarray(rng.integers(0, SIZES[-1], rows), device=device)
    return x, y


def _step_fn(params: list[tc.Variable], opt: tc.optim.Optimizer, between=None):  # noqa: ANN001, ANN202
    w1, b1, w2, b2, w3, b3 = params

    def step(x: tc.Tensor, y: tc.Tensor) -> tc.Tensor:
        with tc.GradientTape() as tape:
            h = F.relu(F.linear(x, w1, b1))
            h = F.relu(F.linear(h, w2, b2))
            loss = F.cross_entropy(F.linear(h, w3, b3), y)
        grads = tape.gradient(loss, params)
        extra = between(params) if between is not None else None  # runs between gradients and updates
        opt.step(grads)
        return loss if extra is None else (loss, extra)

    return step


def _train(device: str, traced: bool, fuse: bool = True, optimizer=None, between=None, steps: int = 3,  # noqa: ANN001, ANN202
           rows: int = 6):
    params = _params(device)
    opt = (optimizer or (lambda ps: tc.optim.SGD(ps, lr=0.05)))(params)
    step = _step_fn(params, opt, between)
    fn = tc.function(step) if traced else step
    x, y = _batch(device, rows)
    stats = None
    if traced:
        real = rewrite.weight_gradient_into_sgd
        if not fuse:
            rewrite.weight_gradient_into_sgd = lambda graph: 0
        try:
            stats = fn.stats(x, y)  # traced and compiled now
        finally:
            rewrite.weight_gradient_into_sgd = real
    for _ in range(steps):
        out = fn(x, y)
    return params, opt, fn, stats, out


def test_fused_updates_give_the_unfused_parameters_bit_for_bit(device: str) -> None:
    fused, opt, fn, stats, _ = _train(device, traced=True)
    assert stats[KEY] == 2
    code = fn.code(*_batch(device))
    # the first layer's input is the argument: its update goes where its gradient was; the
    # second's reads an activation and a gradient, new storage, and stays where its update was
    assert code.count("(where the gradient was)") == 1 and code.count("(where the update was)") == 1
    unfused, opt_ref, _, stats_ref, _ = _train(device, traced=True, fuse=False)
    eager, *_ = _train(device, traced=False)
    assert stats_ref[KEY] == 0
    for p, q, r in zip(fused, unfused, eager):
        assert p.numpy().tobytes() == q.numpy().tobytes() == r.numpy().tobytes()
    assert opt.iterations == opt_ref.iterations == 3


@pytest.mark.parametrize("optimizer", ["momentum", "weight decay", "nesterov"])
def test_only_plain_sgd_is_fused(device: str, optimizer: str) -> None:
    make = {"momentum": lambda ps: tc.optim.SGD(ps, lr=0.05, momentum=0.9),
            "weight decay": lambda ps: tc.optim.SGD(ps, lr=0.05, weight_decay=0.01),
            "nesterov": lambda ps: tc.optim.SGD(ps, lr=0.05, momentum=0.5, nesterov=True)}[optimizer]
    traced, _, _, stats, _ = _train(device, traced=True, optimizer=make)
    eager, *_ = _train(device, traced=False, optimizer=make)
    assert stats[KEY] == 0
    for p, q in zip(traced, eager):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-6, atol=1e-7)


def test_a_weight_read_after_its_gradient_is_not_moved_before_that_read(device: str) -> None:
    # The first weight is read between the gradients and the updates, and its layer's input is
    # the function's argument: neither place is safe for its fused update (before the read,
    # the read would see the new weight; at the update, the argument could be a view of a
    # weight updated in between), so only the second layer is fused.
    def read_w1(params: list) -> tc.Tensor:
        return tc.sum(params[0] * params[0])

    fused, _, _, stats, (loss, norm) = _train(device, traced=True, between=read_w1)
    eager, _, _, _, (loss_e, norm_e) = _train(device, traced=False, between=read_w1)
    assert stats[KEY] == 1
    # the norm was read before the update (a fused reduction on devices: rounded its own way)
    np.testing.assert_allclose(norm.numpy(), norm_e.numpy(), rtol=1e-6)
    for p, q in zip(fused, eager):
        assert p.numpy().tobytes() == q.numpy().tobytes()


def test_a_returned_gradient_is_not_fused(device: str) -> None:
    params = _params(device)
    opt = tc.optim.SGD(params, lr=0.05)
    w1, b1 = params[:2]

    def step(x: tc.Tensor, y: tc.Tensor) -> tc.Tensor:
        with tc.GradientTape() as tape:
            loss = F.cross_entropy(F.linear(x, w1[:SIZES[-1]], b1[:SIZES[-1]]), y)
        grads = tape.gradient(loss, [w1, b1])
        opt.step(grads + [tc.zeros_like(p) for p in params[2:]])
        return grads[0]  # the weight gradient is read by the caller too

    fn = tc.function(step)
    x, y = _batch(device)
    assert fn.stats(x, y)[KEY] == 0


def test_a_step_with_a_bad_label_writes_no_fused_update() -> None:
    device = "opencl:0"
    if device not in [str(d.device) for d in tc.devices()]:
        pytest.skip("opencl:0 is unavailable here: an asynchronous device's error record is what this checks")
    params, opt, fn, stats, _ = _train(device, traced=True, steps=1)
    assert stats[KEY] == 2
    before = [p.numpy().copy() for p in params]
    x, _ = _batch(device)
    bad = tc.asarray(np.full(6, SIZES[-1] + 3), device=device)
    with pytest.raises(tc.OpError, match="out of range"):
        fn(x, bad).numpy()
    for p, b in zip(params, before):
        assert p.numpy().tobytes() == b.tobytes()
    assert opt.iterations == 1  # the fused first layer counts the step: not counted either


def test_on_cpu_the_pass_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the pass as the library runs it
    *_, stats, _ = _train("cpu", traced=True, steps=1)
    assert stats[KEY] == 0


def test_an_update_does_not_keep_more_alive_than_the_gradient_it_removes(device: str) -> None:
    # A batch of 40: the second layer's gradient and input (40 x 16 each) outweigh its weight
    # gradient (16 x 16); fused where its update was, they would live until then and raise the
    # step's memory peak. Only the first layer, fused where its gradient was, remains.
    fused, _, fn, stats, _ = _train(device, traced=True, rows=40)
    eager, *_ = _train(device, traced=False, rows=40)
    assert stats[KEY] == 1 and "(where the gradient was)" in fn.code(*_batch(device, 40))
    for p, q in zip(fused, eager):
        assert p.numpy().tobytes() == q.numpy().tobytes()


def test_the_idiomatic_weight_gradient_is_fused_too(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # x @ w + b with w held (in, out), p.assign_sub(lr * g): the weight's gradient is
    # matmul(permute_dims(x), g), and the update an sgd_step once rewrite_sgd made it one
    from tensorcore.graph import rewrite_sgd

    original = rewrite_sgd.updates_to_sgd_step
    monkeypatch.setattr(rewrite_sgd, "updates_to_sgd_step", lambda graph: original(graph, on_cpu=True))

    def run(traced: bool) -> tuple[list, object]:
        params = [tc.Variable(np.ascontiguousarray(p.numpy().T), device=device) for p in _params(device)]
        w1, b1, w2, b2, w3, b3 = params

        def step(x: tc.Tensor, y: tc.Tensor) -> tc.Tensor:
            with tc.GradientTape() as tape:
                h = F.relu(x @ w1 + b1)
                h = F.relu(h @ w2 + b2)
                loss = F.cross_entropy(h @ w3 + b3, y)
            for p, g in zip(params, tape.gradient(loss, params)):
                p.assign_sub(0.05 * g)
            return loss

        fn = tc.function(step) if traced else step
        stats = fn.stats(*_batch(device)) if traced else None
        for _ in range(3):
            fn(*_batch(device))
        return params, stats

    fused, stats = run(True)
    eager, _ = run(False)
    assert stats[KEY] == 2 and stats["updates -> sgd_step"] == 6
    for p, q in zip(fused, eager):
        assert p.numpy().tobytes() == q.numpy().tobytes()


# --- what the fused update must not move past (found by review) -------------------------------


def _same_as_eager(device: str, make_step, calls: int = 2, expect: int | None = None):  # noqa: ANN001, ANN202
    """Run ``make_step(params, opt)`` eagerly and traced (the pass on) from the same start;
    the parameters and step counts must agree bit for bit, the returned values too on cpu."""
    runs = []
    for traced in (False, True):
        params = _params(device)
        opt = tc.optim.SGD(params, lr=0.05)
        step, args = make_step(params, opt)
        fn = tc.function(step) if traced else step
        stats = fn.stats(*args) if traced else None
        outs = [fn(*args) for _ in range(calls)]
        runs.append((params, outs, opt.iterations, stats))
    (pe, oe, ie, _), (pt, ot, it, stats) = runs
    for p, q in zip(pe, pt):
        assert p.numpy().tobytes() == q.numpy().tobytes()
    for a, b in zip(oe, ot):
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            if device.startswith("cpu"):
                assert u.numpy().tobytes() == v.numpy().tobytes()
            else:  # a traced sum of products is one fused reduction there, rounded its own way
                np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-6)
    assert ie == it
    if expect is not None:
        assert stats[KEY] == expect
    return stats


def test_a_learning_rate_computed_from_the_step_counter(device: str) -> None:
    # opt.step computes lr(step) after the gradients: the first layer's update cannot move
    # before that (the learning rate would not exist yet, and the counter not be read first)
    def make(params, opt):  # noqa: ANN001, ANN202
        opt = tc.optim.SGD(params, lr=lambda s: 0.05 / (1.0 + s))
        return _step_fn(params, opt), _batch(device)

    _same_as_eager(device, make, calls=3, expect=1)


def test_an_activation_written_through_a_view_between_gradient_and_update(device: str) -> None:
    def make(params, opt):  # noqa: ANN001, ANN202
        w1, b1, w2, b2, w3, b3 = params

        def step(x: tc.Tensor, y: tc.Tensor) -> tuple:
            with tc.GradientTape() as tape:
                h1 = F.relu(F.linear(x, w1, b1))
                h2 = F.relu(F.linear(h1, w2, b2))
                loss = F.cross_entropy(F.linear(h2, w3, b3), y)
            grads = tape.gradient(loss, params)
            h1[0:3][...] = 1.0  # layer 2's input, written after its gradient
            opt.step(grads)
            return loss, h1

        return step, _batch(device)

    _same_as_eager(device, make)


def test_an_argument_that_views_a_weight_read_between_gradient_and_update(device: str) -> None:
    # the argument is a view of the first weight: the read after the gradients must see the
    # weight before its update, so that update stays where it was
    def make(params, opt):  # noqa: ANN001, ANN202
        w1 = params[0]

        def outer(x: tc.Tensor, y: tc.Tensor, view: tc.Tensor) -> tuple:
            with tc.GradientTape() as tape:
                h = F.relu(F.linear(x, w1, params[1]))
                h = F.relu(F.linear(h, params[2], params[3]))
                loss = F.cross_entropy(F.linear(h, params[4], params[5]), y)
            grads = tape.gradient(loss, params)
            probe = tc.sum(view * view)
            opt.step(grads)
            return loss, probe

        return outer, (*_batch(device), w1[0:4])

    _same_as_eager(device, make)


def test_a_device_error_found_between_gradient_and_update_stops_every_update(device: str) -> None:
    params = _params(device)
    opt = tc.optim.SGD(params, lr=0.05)
    w1, b1, w2, b2, w3, b3 = params

    def step(x: tc.Tensor, y: tc.Tensor, y2: tc.Tensor) -> tuple:
        with tc.GradientTape() as tape:
            logits = F.linear(F.relu(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)), w3, b3)
            loss = F.cross_entropy(logits, y)
        grads = tape.gradient(loss, params)
        loss2 = F.cross_entropy(logits, y2)  # a second label set, checked after the gradients
        opt.step(grads)
        return loss, loss2

    fn = tc.function(step)
    x, y = _batch(device)
    fn(x, y, tc.asarray(y.numpy(), device=device))  # a second label tensor of its own (one tensor twice traces one input)
    before = [p.numpy().copy() for p in params]
    with pytest.raises(tc.OpError, match="out of range"):
        out = fn(x, y, tc.asarray(np.full(6, SIZES[-1] + 4), device=device))
        out[1].numpy()
    for p, b in zip(params, before):
        assert p.numpy().tobytes() == b.tobytes()
    assert opt.iterations == 1


def test_an_input_that_views_its_own_weight_runs_under_strict_placement(device: str) -> None:
    # the fused kernel reads its operand from a copy when it shares the weight's memory (it
    # declined before, and strict placement refused the step the unfused graph runs)
    def make(params, opt):  # noqa: ANN001, ANN202
        square = tc.Variable(np.eye(SIZES[0], dtype=np.float32) / 2, device=device)
        params[0] = tc.Variable(np.random.default_rng(1).standard_normal((SIZES[1], SIZES[0])).astype(np.float32)
                                / 4, device=device)
        opt = tc.optim.SGD(params + [square], lr=0.05)
        w1 = params[0]

        def step(y: tc.Tensor) -> tc.Tensor:
            x = w1[0:6, :SIZES[0]]  # the first layer's input: a view of its own weight
            with tc.GradientTape() as tape:
                h = F.relu(F.linear(x, w1, params[1]))
                h = F.relu(F.linear(h, params[2], params[3]))
                loss = F.cross_entropy(F.linear(h, params[4], params[5]), y)
            opt.step(tape.gradient(loss, params) + [tc.zeros_like(square)])
            return loss

        return step, (_batch(device)[1],)

    with placement.placement_policy("strict"):
        _same_as_eager(device, make)


@pytest.mark.parametrize("shape", [(32, 8, 64), (8, 32, 64), (5, 7, 3)], ids=str)
def test_the_fused_op_keeps_a_negative_zero_weight(device: str, shape: tuple) -> None:
    # p = -0.0 with a zero gradient: p - rate * 0 is -0.0 (the transposed store added +0.0 to
    # the product without a bias, and gave +0.0)
    from tensorcore.dispatch import apply, apply_inplace
    from tensorcore.ops.registry import OPS

    out, inp, k = shape
    p0 = np.full((out, inp), -0.0, np.float32)
    g = np.zeros((k, out), np.float32)
    x = np.random.default_rng(2).standard_normal((k, inp)).astype(np.float32)
    lr = tc.asarray(0.1, dtype=tc.float64, device=device)
    fused, plain = tc.Variable(p0, device=device), tc.Variable(p0, device=device)
    gt, xt = tc.asarray(g, device=device), tc.asarray(x, device=device)
    apply_inplace(OPS["linear_weight_sgd_step"], fused, (gt, xt, lr, None), {})
    grad = apply(OPS["linear_backward_weight"], (gt, xt), {})
    apply_inplace(OPS["sgd_step"], plain, (grad, None, lr, None), {"momentum": 0.0, "nesterov": False,
                                                                     "weight_decay": 0.0})
    assert fused.numpy().tobytes() == plain.numpy().tobytes()
    assert np.signbit(fused.numpy()).all()


def test_a_learning_rate_that_views_a_variable_updated_between(device: str) -> None:
    # A learned learning rate: the model's SGD reads a view of a Variable that another optimizer
    # updates between the model's gradients and its step; every update must read the new rate
    def make(params, opt):  # noqa: ANN001, ANN202
        rate = tc.Variable(np.asarray([0.05]), device=device)  # float64, the optimizers' rate dtype
        view = rate[0:1]
        opt = tc.optim.SGD(params, lr=lambda s: view)
        opt_rate = tc.optim.SGD([rate], lr=0.5)

        def step(x: tc.Tensor, y: tc.Tensor) -> tc.Tensor:
            with tc.GradientTape() as tape_rate:
                penalty = tc.sum((rate - 0.2) * (rate - 0.2))
            g_rate = tape_rate.gradient(penalty, [rate])
            with tc.GradientTape() as tape:
                h = F.relu(F.linear(x, params[0], params[1]))
                h = F.relu(F.linear(h, params[2], params[3]))
                loss = F.cross_entropy(F.linear(h, params[4], params[5]), y)
            grads = tape.gradient(loss, params)
            opt_rate.step(g_rate)  # the rate changes here
            opt.step(grads)
            return loss

        return step, _batch(device)

    _same_as_eager(device, make, calls=3)
