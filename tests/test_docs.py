"""The documentation stays true: the README example runs, and docs/backends.md lists the real ops."""

from __future__ import annotations

import pathlib
import re

import tensorcore as tc
from tensorcore.ops.registry import OPS

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_readme_example_runs() -> None:
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## A short example\s+```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert isinstance(namespace["loss"], tc.Tensor)


def _run_readme(*sections: str) -> dict:
    """Run the first Python block of each README section in turn, in one namespace (later
    sections use the names of the earlier ones); return the namespace."""
    text = (ROOT / "README.md").read_text()
    namespace: dict = {}
    for section in sections:
        code = re.search(rf"## {section}\s+.*?```python\n(.*?)```", text, re.S).group(1)
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


def test_readme_graph_mode_example_runs(capsys) -> None:
    namespace = _run_readme("A short example", "Graph mode")
    step = namespace["train_step"]
    assert step.trace_count == 1 and "partitions:" in capsys.readouterr().out
    assert isinstance(step(namespace["x"], namespace["y"]), tc.Tensor) and step.trace_count == 1


def test_readme_distribute_example_runs() -> None:
    namespace = _run_readme("A short example", "Several devices and processes")
    assert isinstance(namespace["loss"], tc.Tensor) and namespace["loss"].shape == ()
    namespace["strategy"].check_in_sync()


def _listed(section: str) -> set[str]:
    text = (ROOT / "docs" / "backends.md").read_text()
    block = re.search(rf"<!-- {section} -->(.*?)<!-- end -->", text, re.S).group(1)
    return set(re.findall(r"`([a-z0-9_.]+)`", block))


def test_backends_doc_lists_every_primitive_and_composite_op() -> None:
    import tensorcore.nn.functional  # noqa: F401 - defines the nn ops

    primitives = {name for name, op in OPS.items() if op.composite is None and not name.startswith("test_")}
    composites = {name for name, op in OPS.items() if op.composite is not None and not name.startswith("test_")}
    assert _listed("primitives") == primitives
    assert _listed("composites") == composites


def test_readme_checkpoint_example_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace = _run_readme("A short example", "Checkpoints, TensorBoard and schedules")
    manager = namespace["manager"]
    assert [pathlib.Path(p).name for p in manager.checkpoints] == ["ckpt-8.safetensors", "ckpt-9.safetensors",
                                                                  "ckpt-10.safetensors"]
    assert namespace["opt"].lr < 0.1 * 0.1  # the cosine schedule ran down
    assert list((tmp_path / "runs" / "logs").iterdir())  # an event file
    w = namespace["w"]
    saved = w.numpy().copy()
    w.assign(tc.zeros(w.shape, device=w.device))
    assert manager.restore_latest().endswith("ckpt-10.safetensors")
    assert (w.numpy() == saved).all()
