"""Libraries written against the Array API standard run unchanged on tensorcore tensors.

Two consumers, on every device of the matrix (``tests/conftest.py``):

- ``array_api_compat``, the helper layer most array-API libraries go through: it must find the
  tensorcore namespace, device and size of a tensor, move tensors between devices, and a
  function written only against the namespace it returns must give NumPy's numbers.
- scikit-learn with ``array_api_dispatch=True``: the estimators and functions whose docs (and
  ``array_api_support`` tags) say they take array-API inputs are fit on tensors, in float32 and,
  where the device has it, float64, and compared with the same estimator fit on NumPy arrays.
  Results must come back as tensors of the input's dtype on the input's device.

Every fix in tensorcore that these consumers needed has its regression test here too
(``result_type`` with Python scalars, which ``array_api_extra.apply_where`` calls).
"""

from __future__ import annotations

import os

# scikit-learn's array-API dispatch refuses to start unless SciPy's own array-API support is on,
# and SciPy reads SCIPY_ARRAY_API once, when it is first imported: so it is set here, before
# anything imports SciPy. `setdefault` leaves a value chosen by whoever runs the suite alone.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import array_api_strict  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tensorcore as tc  # noqa: E402

aac = pytest.importorskip("array_api_compat", reason="array-api-compat is not installed (pip install '.[test]')")
sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")

from sklearn import metrics  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # noqa: E402
from sklearn.linear_model import Ridge, RidgeClassifier, RidgeCV  # noqa: E402
from sklearn.metrics.pairwise import euclidean_distances, rbf_kernel  # noqa: E402
from sklearn.naive_bayes import GaussianNB  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    LabelEncoder,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    PolynomialFeatures,
    StandardScaler,
)

# The scikit-learn tests were verified with 1.9 (which needs Python 3.11): earlier releases
# lack array-API support for some of what they use (GaussianNB, confusion_matrix, the check
# that predict's input lives where fit's did), so they skip there rather than fail.
SKLEARN_VERSION = tuple(int(p) for p in sklearn.__version__.split(".")[:2] if p.isdigit())
needs_sklearn = pytest.mark.skipif(SKLEARN_VERSION < (1, 9), reason=(
    f"scikit-learn {sklearn.__version__}: these checks were verified with 1.9 and later"))

DTYPES = ["float32", "float64"]
# float32 results go through different (but equally valid) summation orders and LAPACK calls on
# each side, so they agree to a few float32 ulps of the data's scale, not bit for bit.
TOLERANCE = {"float32": {"rtol": 2e-3, "atol": 2e-4}, "float64": {"rtol": 1e-7, "atol": 1e-9}}


def _float_dtype(device: str, name: str) -> Any:
    """The tensorcore dtype ``name`` if ``device`` computes in it, else skip the test (an OpenCL
    device without the fp64 extension has no float64)."""
    have = tc.__array_namespace_info__().dtypes(device=tc.Device(device), kind="real floating")
    if name not in have:
        pytest.skip(f"{device} has no {name}")
    return getattr(tc, name)


def _data(dtype: str) -> dict[str, np.ndarray]:
    """A small, well-conditioned problem: features, binary and 3-class labels, a regression
    target. Integer labels stay int64 whatever the float dtype."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5)) * np.array([1.0, 2.0, 0.5, 3.0, 1.5]) + np.array([0.0, 1.0, -2.0, 0.5, 4.0])
    y2 = (x[:, 0] + 0.3 * x[:, 1] > 0.2).astype(np.int64)
    y3 = np.digitize(x[:, 0] - 0.2 * x[:, 3], [-0.6, 0.6]).astype(np.int64)
    target = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1 * rng.standard_normal(60) + 2.0
    return {"x": x.astype(dtype), "y2": y2, "y3": y3, "target": target.astype(dtype)}


def _on(device: str, *arrays: np.ndarray) -> list[tc.Tensor]:
    return [tc.asarray(a, device=device) for a in arrays]


def _check_tensor(result: object, reference: np.ndarray, device: str, dtype: str | None = None) -> None:
    """``result`` is a tensor on ``device`` (of ``dtype`` when given, else of the reference's
    dtype) and holds the reference's values within ``dtype``'s tolerance."""
    assert isinstance(result, tc.Tensor), type(result)
    assert result.device == tc.Device(device)
    reference = np.asarray(reference)
    assert result.dtype == reference.dtype, (result.dtype, reference.dtype)
    assert result.shape == reference.shape
    tol = TOLERANCE[dtype] if dtype else {"rtol": 0, "atol": 0}
    np.testing.assert_allclose(result.numpy(), reference, **tol)


def _dispatched(fn: Callable[..., Any], *args: Any) -> Any:
    with sklearn.config_context(array_api_dispatch=True):
        return fn(*args)


# --- array_api_compat -------------------------------------------------------------------------------


def test_array_namespace_is_tensorcore(device: str) -> None:
    x = tc.ones((2, 3), device=device)
    assert aac.array_namespace(x) is tc
    assert aac.array_namespace(x, x[0]) is tc
    for version in ("2023.12", "2024.12"):
        assert aac.array_namespace(x, api_version=version) is tc
    assert aac.is_array_api_obj(x)
    assert not aac.is_numpy_array(x) and not aac.is_torch_array(x) and not aac.is_cupy_array(x)
    assert aac.is_writeable_array(x)  # `x[i] = v` works, so helpers may write in place
    if hasattr(aac, "is_lazy_array"):  # newer array_api_compat releases only
        assert not aac.is_lazy_array(x)  # shapes and values are concrete: bool(), float() work


def test_array_namespace_refuses_mixed_libraries(device: str) -> None:
    with pytest.raises(TypeError, match="Multiple namespaces"):
        aac.array_namespace(tc.ones(2, device=device), np.ones(2))


def test_device_size_and_to_device(device: str) -> None:
    x = tc.reshape(tc.arange(12, dtype=tc.float32, device=device), (3, 4))
    assert aac.device(x) == tc.Device(device)
    assert aac.size(x) == 12 and aac.size(x[0]) == 4 and aac.size(tc.asarray(1.0, device=device)) == 1
    for target in ("cpu", device, tc.Device(device)):
        moved = aac.to_device(x, target)
        assert moved.device == tc.Device(target)
        np.testing.assert_array_equal(moved.numpy(), np.arange(12, dtype=np.float32).reshape(3, 4))
    # The device a namespace function is given is the device of its result.
    assert tc.zeros(2, device=aac.device(x)).device == x.device


def _standardize(x: Any) -> tuple[Any, Any]:
    """Scale each column of ``x`` to mean 0 and standard deviation 1 (a constant column is only
    centred), then each row to unit Euclidean norm: written only against the namespace that
    ``array_namespace`` finds, as array-API libraries write their code."""
    xp = aac.array_namespace(x)
    mean = xp.mean(x, axis=0, keepdims=True)
    std = xp.std(x, axis=0, correction=1, keepdims=True)
    scaled = (x - mean) / xp.where(std > 0, std, xp.ones_like(std))
    norms = xp.linalg.vector_norm(scaled, axis=1, keepdims=True)
    return scaled / xp.where(norms == 0, 1.0, norms), norms


@pytest.mark.parametrize("dtype", DTYPES)
def test_generic_function_gives_numpys_result(device: str, dtype: str) -> None:
    _float_dtype(device, dtype)
    x = _data(dtype)["x"][:20].copy()
    x[:, 2] = 3.0  # a constant column: std 0, kept finite by the `where`
    got_rows, got_norms = _standardize(tc.asarray(x, device=device))
    want_rows, want_norms = _standardize(x)  # array_api_compat's NumPy namespace
    _check_tensor(got_rows, want_rows, device, dtype)
    _check_tensor(got_norms, want_norms, device, dtype)


# --- what tensorcore changed for these consumers -----------------------------------------------------


SCALARS = [True, 3, -1, 300, 1.5, 2j]


@pytest.mark.parametrize("name", [d.name for d in tc.dtypes.ALL if hasattr(array_api_strict, d.name)])
def test_result_type_with_python_scalars_matches_the_standard(name: str) -> None:
    """2024.12 lets ``result_type`` take Python scalars, weakly typed. array_api_extra's
    ``apply_where`` (vendored in scikit-learn) calls ``xp.result_type(array, fill_value)``;
    tensorcore used to raise ``unsupported dtype 1.0``."""
    flags = array_api_strict.get_array_api_strict_flags()
    array_api_strict.set_array_api_strict_flags(api_version="2024.12")
    try:
        try:
            array_api_strict.result_type(array_api_strict.float32, 1.0)
        except TypeError:
            pytest.skip("this array_api_strict predates scalars in result_type (2024.12)")
        for value in SCALARS:
            try:
                expected = array_api_strict.result_type(getattr(array_api_strict, name), value)
            except (TypeError, OverflowError) as refused:
                with pytest.raises(type(refused)):
                    tc.result_type(getattr(tc, name), value)
                continue
            assert tc.result_type(getattr(tc, name), value).name == str(expected).rsplit(".", 1)[-1], (name, value)
            x = tc.zeros(2, dtype=getattr(tc, name))
            assert tc.result_type(x, value, x) == tc.result_type(getattr(tc, name), value)
    finally:
        array_api_strict.set_array_api_strict_flags(**flags)


def test_result_type_scalars_are_weak_and_need_an_array_or_dtype() -> None:
    assert tc.result_type(tc.float32, 1.0, tc.float64, 2) == tc.float64  # the dtypes decide
    assert tc.result_type(tc.float16, 1.0) == tc.float16
    assert tc.result_type(tc.float64, 1j) == tc.complex128
    assert tc.result_type(tc.float32, np.float64(1.0)) == tc.float64  # a NumPy scalar has a dtype
    with pytest.raises(ValueError, match="at least one array or dtype"):
        tc.result_type(1.0, 2)
    with pytest.raises(OverflowError, match="out of the range of int8"):
        tc.result_type(tc.int8, 1000)


def test_apply_where_with_a_fill_value(device: str) -> None:
    xpx = pytest.importorskip("sklearn.externals.array_api_extra", reason="this scikit-learn vendors no array_api_extra")
    x = tc.asarray([4.0, -1.0, 9.0, 0.0], device=device)
    out = xpx.apply_where(x > 0, (x,), tc.sqrt, fill_value=-5.0, xp=tc)
    _check_tensor(out, np.array([2.0, -5.0, 3.0, -5.0], dtype=np.float32), device, "float32")


def test_array_api_extra_helpers(device: str) -> None:
    """array_api_extra (vendored in scikit-learn, which calls it throughout) on tensors."""
    xpx = pytest.importorskip("sklearn.externals.array_api_extra", reason="this scikit-learn vendors no array_api_extra")
    x_np = _data("float32")["x"][:8]
    (x,) = _on(device, x_np)
    # cov computes in float64 whatever the input's precision, as np.cov does.
    if "float64" in tc.__array_namespace_info__().dtypes(device=tc.Device(device), kind="real floating"):
        _check_tensor(xpx.cov(x.mT), np.cov(x_np.T), device, "float32")
    _check_tensor(xpx.pad(x, 1), np.pad(x_np, 1), device, "float32")
    _check_tensor(xpx.at(x)[0, :].set(1.0), np.concatenate([np.ones((1, 5), np.float32), x_np[1:]]), device, "float32")
    labels = np.array([2, 0, 1, 2], dtype=np.int64)
    (y,) = _on(device, labels)
    _check_tensor(xpx.one_hot(y, 3, dtype=tc.float32), np.eye(3, dtype=np.float32)[labels], device, "float32")


# --- scikit-learn, array_api_dispatch=True ---------------------------------------------------------


@needs_sklearn
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_discriminant_analysis(device: str, dtype: str) -> None:
    _float_dtype(device, dtype)
    d = _data(dtype)
    ref = LinearDiscriminantAnalysis(solver="svd").fit(d["x"], d["y3"])
    x, y = _on(device, d["x"], d["y3"])
    lda = _dispatched(lambda: LinearDiscriminantAnalysis(solver="svd").fit(x, y))
    _check_tensor(lda.classes_, ref.classes_, device)
    for attr in ("coef_", "intercept_", "means_", "explained_variance_ratio_", "scalings_"):
        _check_tensor(getattr(lda, attr), getattr(ref, attr), device, dtype)
    _check_tensor(_dispatched(lda.predict, x), ref.predict(d["x"]), device)
    for method in ("predict_proba", "decision_function", "transform"):
        _check_tensor(_dispatched(getattr(lda, method), x), getattr(ref, method)(d["x"]), device, dtype)


@needs_sklearn
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("svd_solver", ["full", "covariance_eigh"])
def test_pca(device: str, dtype: str, svd_solver: str) -> None:
    _float_dtype(device, dtype)
    d = _data(dtype)
    ref = PCA(n_components=3, svd_solver=svd_solver).fit(d["x"])
    (x,) = _on(device, d["x"])
    pca = _dispatched(lambda: PCA(n_components=3, svd_solver=svd_solver).fit(x))
    for attr in ("components_", "explained_variance_", "explained_variance_ratio_", "singular_values_", "mean_"):
        _check_tensor(getattr(pca, attr), getattr(ref, attr), device, dtype)
    projected = _dispatched(pca.transform, x)
    _check_tensor(projected, ref.transform(d["x"]), device, dtype)
    _check_tensor(_dispatched(pca.inverse_transform, projected), ref.inverse_transform(ref.transform(d["x"])),
                  device, dtype)


@needs_sklearn
@pytest.mark.parametrize("dtype", DTYPES)
def test_ridge(device: str, dtype: str) -> None:
    _float_dtype(device, dtype)
    d = _data(dtype)
    x, target, y3 = _on(device, d["x"], d["target"], d["y3"])
    for make, y_np, y in (
        (lambda: Ridge(alpha=0.5, solver="svd"), d["target"], target),
        (lambda: RidgeCV(alphas=(0.1, 1.0, 10.0)), d["target"], target),
        (lambda: RidgeClassifier(solver="svd"), d["y3"], y3),
    ):
        ref = make().fit(d["x"], y_np)
        est = _dispatched(lambda: make().fit(x, y))  # noqa: B023 - called at once, in this iteration
        _check_tensor(est.coef_, ref.coef_, device, dtype)
        _check_tensor(_dispatched(est.predict, x), ref.predict(d["x"]), device, dtype if y is target else None)


@needs_sklearn
@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_naive_bayes(device: str, dtype: str) -> None:
    _float_dtype(device, dtype)
    d = _data(dtype)
    ref = GaussianNB().fit(d["x"], d["y3"])
    x, y = _on(device, d["x"], d["y3"])
    nb = _dispatched(lambda: GaussianNB().fit(x, y))
    for attr in ("theta_", "var_", "class_prior_"):
        _check_tensor(getattr(nb, attr), getattr(ref, attr), device, dtype)
    _check_tensor(_dispatched(nb.predict_proba, x), ref.predict_proba(d["x"]), device, dtype)
    _check_tensor(_dispatched(nb.predict, x), ref.predict(d["x"]), device)


# On cpu, tensorcore's kernels are NumPy's and NumPy warns on 0/0. StandardScaler's running
# variance divides 0 by 0 on its first batch (and discards the result): sklearn silences it with
# np.errstate for NumPy inputs only ("no errstate equivalent in array API").
@needs_sklearn
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [StandardScaler, MinMaxScaler, MaxAbsScaler, Normalizer,
                                  lambda: PolynomialFeatures(degree=2)], ids=lambda m: getattr(m, "__name__", "poly"))
def test_preprocessing(device: str, dtype: str, make: Callable[[], Any]) -> None:
    _float_dtype(device, dtype)
    d = _data(dtype)
    ref = make().fit(d["x"])
    (x,) = _on(device, d["x"])
    est = _dispatched(lambda: make().fit(x))
    out = _dispatched(est.transform, x)
    _check_tensor(out, ref.transform(d["x"]), device, dtype)
    if hasattr(est, "inverse_transform"):
        _check_tensor(_dispatched(est.inverse_transform, out), d["x"], device, dtype)


@needs_sklearn
def test_label_encoder(device: str) -> None:
    labels = np.array([7, 3, 3, 9, 7, 1], dtype=np.int64)
    (y,) = _on(device, labels)
    ref = LabelEncoder().fit(labels)
    enc = _dispatched(lambda: LabelEncoder().fit(y))
    _check_tensor(enc.classes_, ref.classes_, device)
    _check_tensor(_dispatched(enc.transform, y), ref.transform(labels), device)


@needs_sklearn
@pytest.mark.parametrize("dtype", DTYPES)
def test_metrics(device: str, dtype: str) -> None:
    _float_dtype(device, dtype)
    d = _data(dtype)
    pred_np = d["target"] * 0.9 + 0.3
    y, y_pred = _on(device, d["y3"], np.roll(d["y3"], 3))
    target, pred = _on(device, d["target"], pred_np)
    tol = TOLERANCE[dtype]
    for fn, args, args_np in (
        (metrics.accuracy_score, (y, y_pred), (d["y3"], np.roll(d["y3"], 3))),
        (metrics.f1_score, (y, y_pred, "macro"), (d["y3"], np.roll(d["y3"], 3), "macro")),
        (metrics.r2_score, (target, pred), (d["target"], pred_np)),
        (metrics.mean_squared_error, (target, pred), (d["target"], pred_np)),
        (metrics.mean_absolute_error, (target, pred), (d["target"], pred_np)),
    ):
        if fn is metrics.f1_score:
            got = _dispatched(lambda a, b: fn(a, b, average="macro"), *args[:2])  # noqa: B023
            want = fn(*args_np[:2], average="macro")
        else:
            got, want = _dispatched(fn, *args), fn(*args_np)
        assert isinstance(got, float), (fn.__name__, type(got))  # scalars come back as Python floats
        np.testing.assert_allclose(got, want, **tol, err_msg=fn.__name__)
    _check_tensor(_dispatched(metrics.confusion_matrix, y, y_pred),
                  metrics.confusion_matrix(d["y3"], np.roll(d["y3"], 3)), device)


@needs_sklearn
@pytest.mark.parametrize("dtype", DTYPES)
def test_pairwise_kernels(device: str, dtype: str) -> None:
    _float_dtype(device, dtype)
    x_np = _data(dtype)["x"][:15]
    (x,) = _on(device, x_np)
    _check_tensor(_dispatched(euclidean_distances, x), euclidean_distances(x_np), device, dtype)
    _check_tensor(_dispatched(lambda a: rbf_kernel(a, gamma=0.1), x), rbf_kernel(x_np, gamma=0.1), device, dtype)


@needs_sklearn
@pytest.mark.xfail(strict=True, raises=TypeError, reason=(
    "scikit-learn's roc_curve calls xp.diff(fps, 2), passing `n` by position; the standard makes "
    "`n` keyword-only (diff(x, /, *, axis=-1, n=1, ...)), and array_api_strict refuses it the same way"))
def test_roc_auc_score(device: str) -> None:
    d = _data("float32")
    y, score = _on(device, d["y2"], d["x"][:, 0])
    got = _dispatched(metrics.roc_auc_score, y, score)
    assert got == pytest.approx(metrics.roc_auc_score(d["y2"], d["x"][:, 0]))


@needs_sklearn
def test_estimator_refuses_inputs_on_another_namespace(device: str) -> None:
    """sklearn checks that predict's input lives where fit's did; tensorcore's namespace and
    devices are what it compares."""
    d = _data("float32")
    x, y = _on(device, d["x"], d["y3"])
    lda = _dispatched(lambda: LinearDiscriminantAnalysis().fit(x, y))
    with pytest.raises(ValueError, match="same namespace"):
        _dispatched(lda.predict, d["x"])
