"""`tfckpt stats` and `tfckpt tree`: numbers checked against numpy (and TensorFlow's reading),
trees against the object graphs TensorFlow wrote."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import hypothesis
import ml_dtypes
import numpy as np
import pytest
from conftest import EXAMPLES, FIXTURES

import tfckpt
from tfckpt import stats as stats_module
from tfckpt.stats import checkpoint_stats, tensor_stats
from tfckpt.tree import checkpoint_tree, render_tree


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfckpt", *args], capture_output=True, text=True, timeout=120,
                          check=False)


def numpy_stats(value: np.ndarray) -> tuple[float, float, float, float, int, int, int]:
    real = value.astype(np.float64).reshape(-1)
    finite = real[np.isfinite(real)]
    return (finite.min(), finite.max(), finite.mean(), finite.std(), int(np.isnan(real).sum()),
            int(np.isinf(real).sum()), int((real == 0).sum()))


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    with_holes = rng.standard_normal(10_001).astype(np.float32) * 1e3 + 5
    with_holes[[3, 500, 9000]] = np.nan
    with_holes[[7, 8000]] = [np.inf, -np.inf]
    with_holes[100:110] = 0
    return {
        "f32": with_holes,
        "f16": rng.standard_normal((37, 11)).astype(np.float16),
        "bf16": rng.standard_normal(999).astype(ml_dtypes.bfloat16),
        "i64": rng.integers(-10**12, 10**12, 5000),
        "u8": rng.integers(0, 255, 777).astype(np.uint8),
        "bool": rng.random(300) > 0.5,
        "big_offset": (rng.standard_normal(4096) + 1e8).astype(np.float64),  # naive sums lose this
    }


@pytest.mark.parametrize("chunk", [7, 1000, 1 << 22])
def test_tensor_stats_equal_numpy_whatever_the_chunking(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats_module, "CHUNK_ELEMENTS", chunk)
    for name, value in arrays().items():
        got = tensor_stats(name, value)
        want = numpy_stats(value)
        assert (got.nan, got.inf, got.zeros) == want[4:], name
        assert got.min == want[0] and got.max == want[1], name
        assert math.isclose(got.mean, want[2], rel_tol=1e-12, abs_tol=1e-12), (name, got.mean, want[2])
        assert math.isclose(got.std, want[3], rel_tol=1e-9, abs_tol=1e-12), (name, got.std, want[3])


def test_edge_cases() -> None:
    empty = tensor_stats("e", np.zeros((0, 3), np.float32))
    assert (empty.size, empty.min, empty.mean) == (0, None, None)
    nan_only = tensor_stats("n", np.array([np.nan, np.nan]))
    assert (nan_only.nan, nan_only.min, nan_only.finite) == (2, None, False)
    complex_ = tensor_stats("c", np.array([1 + 1j, np.nan, 0]))
    assert (complex_.nan, complex_.zeros, complex_.min) == (1, 1, None)
    strings = tensor_stats("s", np.array([b"ab", b""], dtype=object))
    assert (strings.size, strings.nbytes, strings.min) == (2, 2, None)


def test_checkpoint_stats_modules_and_totals(tmp_path: Path) -> None:
    values = arrays()
    prefix = tfckpt.save({f"net/{'enc' if i % 2 else 'dec'}/{name}": v for i, (name, v) in enumerate(values.items())},
                         tmp_path / "ck")
    report = checkpoint_stats(prefix)
    assert report.parameters == sum(v.size for v in values.values())
    assert report.nbytes == sum(v.nbytes for v in values.values())
    assert {m.name: m.tensors for m in report.modules} == {"net/dec": 4, "net/enc": 3}
    assert [t.name for t in report.non_finite] == ["net/dec/f32"]
    top = checkpoint_stats(prefix, depth=1)
    assert [(m.name, m.parameters) for m in top.modules] == [("net", report.parameters)]


def test_cli_stats_nan_json_and_exit_codes(tmp_path: Path) -> None:
    clean = tfckpt.save({"a": np.ones(3, np.float32)}, tmp_path / "clean")
    dirty = tfckpt.save({"a": np.ones(3, np.float32), "b": np.array([1.0, np.nan])}, tmp_path / "dirty")
    ok = cli("stats", clean, "--nan")
    assert ok.returncode == 0 and "no tensor" in ok.stdout
    bad = cli("stats", dirty, "--nan")
    assert bad.returncode == 1 and bad.stdout.splitlines()[1].split()[0] == "b"
    data = json.loads(cli("stats", dirty, "--json").stdout)
    assert [(t["name"], t["nan"]) for t in data["tensors"]] == [("a", 0), ("b", 1)] and data["total"]["elements"] == 5
    table = cli("stats", str(EXAMPLES / "keras_mlp"))
    assert table.returncode == 0 and "model/_functional/_operations/1/_kernel" in table.stdout
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in table.stdout and "\x1b" not in table.stdout + table.stderr


def test_stats_hold_about_one_tensor(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    prefix = tfckpt.save({f"t{i:02d}": rng.standard_normal(1 << 18, dtype=np.float32) for i in range(48)},
                         tmp_path / "ck")  # 48 MiB in 1 MiB tensors
    tracemalloc.start()
    try:
        checkpoint_stats(prefix)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 48 << 20, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.tf
def test_stats_agree_with_what_tensorflow_reads(tf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    values = {"w": tf.Variable(tf.constant(arrays()["f32"])), "h": tf.Variable(tf.constant(arrays()["f16"])),
              "k": tf.Variable(tf.constant(arrays()["i64"]))}
    path = tf.train.Checkpoint(**values).write(str(tmp_path / "tf"))
    reader = tf.train.load_checkpoint(path)
    report = {t.name: t for t in checkpoint_stats(path).tensors}
    for key in reader.get_variable_to_shape_map():
        if key == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        want = numpy_stats(np.asarray(reader.get_tensor(key)))
        got = report[key]
        assert (got.min, got.max, got.nan, got.inf, got.zeros) == (want[0], want[1], *want[4:])
        assert math.isclose(got.mean, want[2], rel_tol=1e-12) and math.isclose(got.std, want[3], rel_tol=1e-9)


# ---- tree ------------------------------------------------------------------------------------

def test_tree_of_a_keras_3_checkpoint() -> None:
    text = render_tree(checkpoint_tree(tfckpt.load_checkpoint(EXAMPLES / "keras_mlp")))
    lines = text.splitlines()
    assert lines[0].endswith("keras_mlp/ckpt-1")
    assert "│       │   ├── _kernel  float32[4, 3]" in text
    # A shared object is expanded at the path object_paths() gives it (TF's key), marked elsewhere.
    assert "│   └── optimizer  -> same object as optimizer" in lines
    assert "│   │   ├── 0  -> same object as model/_functional/_operations/1/_kernel" in lines
    # Every tensor appears exactly once as a leaf; shared objects are references.
    leaves = [line for line in lines if "float32[" in line or "int64[" in line]
    assert len(leaves) == len(tfckpt.load_checkpoint(EXAMPLES / "keras_mlp")) - 1  # all but the graph
    without = render_tree(checkpoint_tree(tfckpt.load_checkpoint(EXAMPLES / "keras_mlp"), optimizer=False))
    assert "optimizer" not in without and "_kernel" in without
    shallow = render_tree(checkpoint_tree(tfckpt.load_checkpoint(EXAMPLES / "keras_mlp")), depth=1)
    assert "└── save_counter  int64[]" in shallow and "├── model  ... (4 tensors)" in shallow
    assert "├── optimizer  ... (10 tensors)" in shallow


def test_tree_hangs_slots_under_their_variables() -> None:
    text = render_tree(checkpoint_tree(tfckpt.load_checkpoint(FIXTURES / "tf2_slots")))
    assert "│   ├── w  float32[2, 2]\n│   │   ├── (slot) m  float32[2, 2]\n│   │   └── (slot) v  float32[2, 2]" in text
    assert "(slot)" not in render_tree(checkpoint_tree(tfckpt.load_checkpoint(FIXTURES / "tf2_slots"), optimizer=False))


def test_tree_of_a_tf1_checkpoint_and_the_cli() -> None:
    text = render_tree(checkpoint_tree(tfckpt.load_checkpoint(FIXTURES / "versions" / "2.16.2" / "tf1_saver")))
    assert text.splitlines()[1:] == ["├── dense", "│   └── kernel  float32[3, 4]", "├── emb  float32[10, 2]",
                                     "└── global_step  int64[]"]
    result = cli("tree", str(EXAMPLES / "keras_mlp"), "--depth", "2", "--no-optimizer")
    assert result.returncode == 0 and "... (4 tensors)" in result.stdout and "\x1b" not in result.stdout
    piped = subprocess.run(f"{sys.executable} -m tfckpt tree {EXAMPLES / 'keras_mlp'} | head -1", shell=True,
                           capture_output=True, text=True, timeout=120, check=False)
    assert piped.stdout.strip().endswith("ckpt-1") and "Traceback" not in piped.stderr


def test_every_tool_function_takes_a_path_or_a_reader_alike() -> None:
    """stats, tree, diff and verify follow one pattern: a path (opened and closed there) or an
    open reader (used and left open: it is the caller's)."""
    from tfckpt.diff import diff_checkpoints
    from tfckpt.verify import verify_checkpoint
    path = str(EXAMPLES / "keras_mlp")
    tools = {
        "stats": lambda source: [(t.name, t.mean) for t in checkpoint_stats(source).tensors],
        "tree": lambda source: render_tree(checkpoint_tree(source)),
        "diff": lambda source: diff_checkpoints(source, path).equal,
        "diff b": lambda source: diff_checkpoints(path, source).equal,
        "verify": lambda source: (verify_checkpoint(source).ok, verify_checkpoint(source).tensors_checked),
    }
    for name, tool in tools.items():
        with tfckpt.load_checkpoint(path) as reader:
            assert tool(reader) == tool(path), name
            assert reader["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] is not None, name  # still open


def test_a_name_based_tree_keeps_no_record_per_tensor(tmp_path: Path) -> None:
    """The tree of a checkpoint without an object graph takes dtypes and shapes from the
    index's listing, not from a full index record per tensor, which the reader's store keeps
    (10^6 of those made the collector's passes superlinear)."""
    import gc
    n = 5000
    prefix = tfckpt.save({f"block_{i // 100}/layer_{i % 100}/kernel": np.zeros(2, np.float32) for i in range(n)},
                         tmp_path / "ck", sync=False)
    reader = tfckpt.load_checkpoint(prefix)
    gc.collect()
    before = len(gc.get_objects())
    tree = tfckpt.checkpoint_tree(reader)
    assert tree.tensors() == n
    del tree
    gc.collect()
    kept = len(gc.get_objects()) - before  # what the reader keeps once the tree is gone
    assert kept < n // 10, kept


def _reference_tree(names: list[str]) -> list[tuple[int, str]]:
    """(level, name) of every node below the root, depth first, built with a table of every
    folder: what a name-based tree must be, however its builder finds the folders."""
    children: dict[tuple[str, ...], list[tuple[str, bool]]] = {(): []}
    for name in sorted(names):
        *folders, leaf = name.split("/")
        for level in range(len(folders)):
            if folders[:level + 1] not in [list(key) for key in children]:
                children[tuple(folders[:level + 1])] = []
                children[tuple(folders[:level])].append((folders[level], True))
        children[tuple(folders)].append((leaf, False))
    out: list[tuple[int, str]] = []
    pending = [((), child) for child in reversed(children[()])]
    while pending:
        path, (name, folder) = pending.pop()
        out.append((len(path) + 1, name))
        if folder:
            pending += [((*path, name), child) for child in reversed(children[(*path, name)])]
    return out


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(hypothesis.strategies.lists(hypothesis.strategies.text("ab/.!", min_size=1, max_size=6),
                                              min_size=1, max_size=12, unique=True))
def test_a_name_based_tree_has_each_folder_once_whatever_the_names(names: list[str]) -> None:
    """Folders found with a stack over the sorted names (one folder's names are consecutive)
    equal a table of every folder, for names that sort between a folder's own (``a.x`` and
    ``a!`` around ``a/...``), empty parts (``a//b``, ``/x``) and a tensor named like a folder."""
    tmp = Path(tempfile.mkdtemp())
    try:
        prefix = tfckpt.save({name: np.zeros(1, np.float32) for name in names}, tmp / "ck", sync=False)
        got: list[tuple[int, str]] = []
        pending = [(1, child) for child in reversed(checkpoint_tree(prefix).children)]
        while pending:
            level, node = pending.pop()
            got.append((level, node.name))
            pending += [(level + 1, child) for child in reversed(node.children)]
        assert got == _reference_tree(names)
    finally:
        shutil.rmtree(tmp)


@pytest.mark.parametrize("enabled", [True, False])
def test_a_tree_is_built_without_the_collectors_passes_and_leaves_it_as_found(
        tmp_path: Path, enabled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each full pass of the cyclic collector walks every node built so far, and their number
    grows with the tree: none runs during the build (however low its threshold; one may run as
    it resumes), and the collector is left as found, also when the build fails."""
    import gc
    prefix = tfckpt.save({f"block_{i // 100}/layer_{i % 100}/kernel": np.zeros(2, np.float32) for i in range(20_000)},
                         tmp_path / "ck", sync=False)
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    reader = tfckpt.load_checkpoint(prefix)
    threshold = gc.get_threshold()
    (gc.enable if enabled else gc.disable)()
    gc.set_threshold(50, 2, 2)
    gc.callbacks.append(count)
    try:
        assert checkpoint_tree(reader).tensors() == 20_000
        assert len(passes) <= (1 if enabled else 0) and gc.isenabled() is enabled, passes

        def damaged() -> None:
            raise tfckpt.CorruptionError("the listing is damaged")

        monkeypatch.setattr(reader.store, "peek_all", damaged)
        with pytest.raises(tfckpt.CorruptionError):
            checkpoint_tree(reader)
        assert gc.isenabled() is enabled
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*threshold)
        gc.enable()
