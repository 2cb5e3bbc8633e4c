"""Measure public entry points over a geometric parameter series and check docs/contracts.md.

``sweep(builder, entry_point, series)`` builds one input per parameter value, runs the entry
point on it and records the input's bytes, the process CPU time (``time.process_time``: other
processes on a shared machine do not count; the minimum of a few repeats, with the garbage
collector paused as ``timeit`` does, so that a collection landing in one run does not look like
growth) and the tracemalloc peak. ``check_growth`` then fails when cost grows faster than the input: the exponent of
``cost ~ input_bytes ** k`` between the first and the last point (costs below a noise floor
count as the floor) must stay <= ``max_exponent`` (1.3 by default: linear, with room for a log
factor and noise). ``sweep_and_check`` confirms a time violation by measuring the series again
with more repeats (a loaded 2-core CI machine once timed a linear case at exponent 1.31; a real
superlinear case fails both times, and memory, which is deterministic, is never re-measured). Every call goes through ``classify``: returning or raising a
:class:`tfckpt.TfckptError` is an outcome; any other exception is a contract violation that
names the entry point and the parameters. A call is stopped (and reported) once it has used
``budget`` seconds of CPU time, so a superlinear case ends quickly instead of hanging the run.
"""

from __future__ import annotations

import contextlib
import gc
import io
import math
import signal
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hostile_builders as hb
from hostile_builders import Builder, input_bytes, tmp_output

import tfckpt
from tfckpt import cli, savedmodel
from tfckpt.compat import tf as compat_tf
from tfckpt.errors import TfckptError

EntryPoint = Callable[[str], Any]
TIME_FLOOR = 0.005  # seconds of CPU: below this, differences are noise (a 2-core VM under load)
MEMORY_FLOOR = 256 << 10  # bytes of tracemalloc peak: interpreter noise


class OverBudget(BaseException):
    """The call used more CPU time than its budget."""


class ContractViolation(AssertionError):
    """An entry point broke its contract: a non-tfckpt exception, a budget, or a growth bound."""


@dataclass
class Point:
    n: int
    input_bytes: int
    seconds: float
    peak: int
    outcome: str


@dataclass
class Sweep:
    family: str
    entry_point: str
    points: list[Point] = field(default_factory=list)

    def exponents(self) -> tuple[float, float]:
        """Growth exponents of CPU time and of peak memory against input bytes."""
        first, last = self.points[0], self.points[-1]
        size_ratio = max(last.input_bytes, 1) / max(first.input_bytes, 1)
        # A constant-size input whose cost still grows (a count hidden in a header) must fail:
        # give the size ratio a floor of 2 so that any growth shows as a large exponent.
        scale = math.log(max(size_ratio, 2.0))
        time_k = math.log(max(last.seconds, TIME_FLOOR) / max(first.seconds, TIME_FLOOR)) / scale
        memory_k = math.log(max(last.peak, MEMORY_FLOOR) / max(first.peak, MEMORY_FLOOR)) / scale
        return time_k, memory_k

    def describe(self) -> str:
        rows = [f"  n={p.n}: {p.input_bytes} B in, {p.seconds * 1000:.1f} ms CPU, peak {p.peak / 1024:.0f} KiB, "
                f"{p.outcome}" for p in self.points]
        return f"{self.family} / {self.entry_point}:\n" + "\n".join(rows)


@contextlib.contextmanager
def cpu_budget(seconds: float) -> Iterator[None]:
    """Raise :class:`OverBudget` in this thread once ``seconds`` of process CPU time are used."""
    def expire(signum: int, frame: Any) -> None:
        raise OverBudget(f"over the {seconds} s CPU budget")

    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def classify(run: EntryPoint, path: str, where: str) -> str:
    """``ok`` or the name of the TfckptError raised; anything else is a ContractViolation."""
    try:
        run(path)
    except TfckptError as exc:
        return type(exc).__name__
    except (OverBudget, ContractViolation):
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ContractViolation(f"{where}: raised {type(exc).__name__}: {str(exc)[:300]}") from exc
    return "ok"


def measure(run: EntryPoint, path: str, where: str, repeats: int, budget: float) -> tuple[float, int, str]:
    """(min CPU seconds over ``repeats``, tracemalloc peak of one more run, outcome)."""
    best = math.inf
    outcome = "ok"
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        start = time.process_time()
        try:
            with cpu_budget(budget):
                outcome = classify(run, path, where)
        except OverBudget as exc:
            raise ContractViolation(f"{where}: {exc}") from None
        finally:
            gc.enable()
        best = min(best, time.process_time() - start)
    tracemalloc.start()
    try:
        # tracemalloc slows allocation-heavy code (35x for many small objects): the slowest traced
        # run takes ~1.5 s of CPU here, so 3x a 1 s budget left a slower CI machine 2x; the untraced
        # runs above hold the budget itself, this one only stops a runaway
        with cpu_budget(budget * 10):
            classify(run, path, where)
        peak = tracemalloc.get_traced_memory()[1]
    except OverBudget as exc:
        raise ContractViolation(f"{where} (traced): {exc}") from None
    finally:
        tracemalloc.stop()
    return best, peak, outcome


def sweep(family: str, build: Builder, name: str, run: EntryPoint, series: Sequence[int], directory: Path, *,
          repeats: int = 3, budget: float = 5.0) -> Sweep:
    """Build and measure one input per value of ``series``."""
    result = Sweep(family, name)
    for n in series:
        where = directory / f"{family}-{n}"
        path = build(where, n)
        seconds, peak, outcome = measure(run, path, f"{name} on {family}(n={n})", repeats, budget)
        result.points.append(Point(n, input_bytes(path), seconds, peak, outcome))
    return result


def check_growth(result: Sweep, max_exponent: float = 1.3, peak: tuple[float, float] | None = None) -> None:
    """Fail on superlinear growth; with ``peak = (a, b)`` also when the peak grows by more than
    ``a`` bytes per added input byte plus ``b`` per added unit of the parameter (the constant
    of a contract, compared as a difference so that the fixed overhead cancels)."""
    time_k, memory_k = result.exponents()
    if time_k > max_exponent or memory_k > max_exponent:
        raise ContractViolation(f"superlinear growth (time exponent {time_k:.2f}, memory exponent "
                                f"{memory_k:.2f}, limit {max_exponent}):\n{result.describe()}")
    if peak is not None:
        first, last = result.points[0], result.points[-1]
        allowed = peak[0] * (last.input_bytes - first.input_bytes) + peak[1] * (last.n - first.n) + MEMORY_FLOOR
        if last.peak - first.peak > allowed:
            raise ContractViolation(f"peak grew by {last.peak - first.peak} bytes, the contract allows {allowed:.0f} "
                                    f"({peak[0]} per input byte + {peak[1]} per unit of n):\n{result.describe()}")


def sweep_and_check(family: str, build: Builder, name: str, run: EntryPoint, series: Sequence[int],
                    directory: Path, *, repeats: int = 2, budget: float = 5.0, max_exponent: float = 1.3,
                    peak: tuple[float, float] | None = None) -> Sweep:
    """``sweep`` then ``check_growth``; a time exponent over the limit is measured once more with
    three times the repeats before it counts (see the module's docstring)."""
    result = sweep(family, build, name, run, series, directory, repeats=repeats, budget=budget)
    time_k, memory_k = result.exponents()
    if time_k > max_exponent and memory_k <= max_exponent:
        result = sweep(family, build, name, run, series, directory / "again", repeats=3 * repeats, budget=budget)
    check_growth(result, max_exponent, peak)
    return result


# ---- the entry points, each taking the path a builder returned -----------------------------

def _each_tensor(path: str) -> None:
    with tfckpt.load_checkpoint(path) as reader:
        for name in reader.get_variable_to_shape_map():
            try:
                reader[name]
            except tfckpt.UnsupportedError:
                pass


def _get_slice(path: str) -> None:
    with tfckpt.load_checkpoint(path) as reader:
        for name, shape in reader.get_variable_to_shape_map().items():
            view = reader.get_slice(name)
            view[tuple(slice(0, min(d, 1)) for d in shape)]


_OPEN_READERS: dict[str, tfckpt.CheckpointReader] = {}


def _missing_key(path: str) -> None:
    """20 lookups of absent names on an open reader (opened on the first call and kept, so that
    the minimum over repeats measures the lookups alone: O(log n) each by contract)."""
    reader = _OPEN_READERS.get(path)
    if reader is None:
        for old in _OPEN_READERS.values():
            old.close()
        _OPEN_READERS.clear()
        reader = _OPEN_READERS[path] = tfckpt.load_checkpoint(path)
    for i in range(20):
        try:
            reader[f"no/such/tensor_{i}"]
        except tfckpt.NotFoundError:
            pass


def _nested(path: str) -> None:
    with tfckpt.load_checkpoint(path) as reader:
        reader.nested()


def _object_paths(path: str) -> None:
    with tfckpt.load_checkpoint(path) as reader:
        reader.object_paths()


def _tree(path: str) -> None:
    with tfckpt.load_checkpoint(path) as reader:
        tfckpt.render_tree(tfckpt.checkpoint_tree(reader))


def _verify(path: str) -> None:
    tfckpt.verify_checkpoint(path)


def _convert(suffix: str) -> EntryPoint:
    def run(path: str) -> None:
        tfckpt.convert_checkpoint(path, tmp_output(Path(path).parent if Path(path).name == "ck" else Path(path),
                                                   suffix))
    return run


def _async_save(path: str) -> None:
    """Every tensor read, then saved again asynchronously (snapshot, background write, wait)."""
    tfckpt.save(tfckpt.load(path), tmp_output(Path(path).parent, "-async"), asynchronous=True).wait()


# A rename, a transpose and a reshape of every float tensor, a split of none (no name matches).
RULES = tfckpt.Rules.from_json({"tfckpt_rules": 1, "rules": [
    {"match": "never/(.*)", "name": ["a/{1}", "b/{1}"], "split": 0},
    {"match": r"layer_(\d+)/kernel", "name": "renamed.{1}", "reshape": [[-1], [1, -1]], "transpose": [1, 0]},
    {"match": "(.*)", "name": "kept/{1}"}]})


def _rules(path: str) -> None:
    tfckpt.load(path, rules=RULES)


def _compat_variables(path: str) -> None:
    """tf.train.list_variables, then tf.train.load_variable of the first three (each call opens
    the checkpoint, as TensorFlow's does), through tfckpt.compat."""
    for name, _ in compat_tf.train.list_variables(path)[:3]:
        try:
            compat_tf.train.load_variable(path, name)
        except compat_tf.errors.UnimplementedError:  # a dtype tfckpt cannot read (its TfckptError too)
            pass


def _meta_show(path: str) -> None:
    savedmodel.show_meta_graph_file(savedmodel.read_meta_graph_file(path))


def _savedmodel_show(path: str) -> None:
    savedmodel.show_all(savedmodel.read_saved_model(path))


def _cli(command: str) -> EntryPoint:
    def run(path: str) -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            cli.main([command, path, "--debug"])  # --debug: let unexpected exceptions through
    return run


CHECKPOINT_ENTRY_POINTS: dict[str, EntryPoint] = {
    "open": lambda path: tfckpt.load_checkpoint(path).close(),
    "list": tfckpt.list_variables,
    "load": tfckpt.load,
    "reader[]": _each_tensor,
    "get_slice": _get_slice,
    "missing key": _missing_key,
    "nested": _nested,
    "object_paths": _object_paths,
    "tree": _tree,
    "stats": tfckpt.checkpoint_stats,
    "verify": _verify,
    "diff": lambda path: tfckpt.diff_checkpoints(path, path),
    "convert": _convert(".safetensors"),
    "cli ls": _cli("ls"),
    "cli tree": _cli("tree"),
}

SAVEDMODEL_ENTRY_POINTS: dict[str, EntryPoint] = {
    "savedmodel show": _savedmodel_show,
}

FILE_ENTRY_POINTS: dict[str, EntryPoint] = {
    "convert": _convert(".npz"),
    "ls": tfckpt.list_variables,  # through tfckpt.load_checkpoint's source readers
    "load": tfckpt.load,
}


@dataclass(frozen=True)
class Family:
    """One swept parameter: its builder, the entry points run on it, the CI series and the
    long series (``fuzz/sweep_contracts.py --long``)."""

    name: str
    build: Builder
    entry_points: tuple[str, ...]
    series: tuple[int, ...]
    long_series: tuple[int, ...]
    max_exponent: float = 1.3  # growth allowed against input bytes (docs/contracts.md)
    peak: tuple[float, float] | None = None  # bytes of peak per added input byte and per added n


ENTRY_POINTS: dict[str, EntryPoint] = {**CHECKPOINT_ENTRY_POINTS, **SAVEDMODEL_ENTRY_POINTS,
                                       **{f"{name} file": run for name, run in FILE_ENTRY_POINTS.items()},
                                       "async save": _async_save, "rules": _rules,
                                       "compat load_variable": _compat_variables, "meta show": _meta_show}

READ = ("open", "list", "load", "reader[]", "stats", "verify", "diff", "convert")
GRAPH = ("nested", "object_paths", "tree", "verify", "cli tree")

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("entries", hb.float_tensors, (*READ, "get_slice", "cli ls"),
           (256, 4096), (256, 4096, 32768, 131072)),
    Family("missing-key lookups", hb.float_tensors, ("missing key",), (256, 4096), (256, 4096, 65536),
           max_exponent=0.5),
    Family("shared key prefixes", hb.shared_prefix_keys, ("open", "verify"), (32, 256), (32, 256, 2048)),
    # docs/contracts.md's open peak, 64x the index: a compressed block's keys are budgeted
    # against its bytes in the file, not its (up to 22x larger) contents.
    Family("snappy shared key prefixes", hb.snappy_shared_prefix_keys, ("open", "verify"), (4096, 65536),
           (4096, 65536, 1 << 20), peak=(64.0, 0.0)),
    Family("repeated block handles", hb.repeated_block_handles, ("open", "verify"), (16, 256), (16, 256, 2048)),
    # README's string bound: reading n strings of b bytes allocates at most 2b + 64n (the object
    # array's pointer and the decoding's per-element lengths), verifying them 2b + 8n.
    Family("empty strings", hb.empty_strings, ("load",), (4096, 1 << 17), (4096, 65536, 1 << 20),
           peak=(2.0, 64.0)),
    Family("empty strings, verified", hb.empty_strings, ("verify",), (4096, 1 << 17), (4096, 65536, 1 << 20),
           peak=(2.0, 8.0)),
    Family("num_shards", hb.num_shards, ("open", "verify"), (16, 4096), (16, 4096, 1 << 16, 2**31 - 1)),
    Family("grid slices", hb.grid_slices, ("load", "get_slice", "verify"), (64, 512), (64, 512, 4096)),
    Family("pinwheel slices", hb.pinwheel_slices, ("load", "verify"), (4, 32), (4, 32, 100, 300)),
    Family("graph fan-out", hb.graph_fanout, GRAPH, (64, 1024), (64, 1024, 16384)),
    Family("graph chain", hb.graph_chain, GRAPH, (64, 2048), (64, 512, 4096, 32768)),
    Family("graph diamonds", hb.graph_diamonds, GRAPH, (4, 14), (4, 16, 24, 40)),
    Family("unmatched attributes", hb.graph_unmatched_attributes, ("object_paths", "verify"),
           (256, 2048), (256, 2048, 16384)),
    Family("unmatched attributes, lookups", hb.graph_unmatched_attributes, ("missing key",),
           (256, 2048), (256, 2048, 16384), max_exponent=0.5),
    Family("name-based tree", hb.name_based, ("tree", "cli tree"), (512, 8192), (512, 8192, 65536)),
    # Past ~50 levels protobuf refuses to parse (its recursion limit: a CorruptionError, the
    # "savedmodel nested 3000" case); CI sweeps the depths that are parsed and printed.
    Family("savedmodel nesting", hb.savedmodel_nesting, ("savedmodel show",), (8, 32), (8, 64, 512)),
    Family("savedmodel pbtxt nesting", hb.savedmodel_pbtxt_nesting, ("savedmodel show",), (8, 3000),
           (8, 3000, 100000)),
    Family("bounded spec shape", hb.savedmodel_bounded_spec, ("savedmodel show",), (16, 1 << 20),
           (16, 1 << 20, 1 << 24)),
    Family("V1 repeated tensor name", hb.v1_repeated_name, ("open", "list"), (512, 8192), (512, 8192, 65536)),
    Family("V1 repeated tensor name, verified", hb.v1_repeated_name, ("verify",), (256, 4096),
           (256, 4096, 32768)),
    Family("safetensors tensors", hb.safetensors_tensors, ("convert file",), (64, 1024), (64, 1024, 16384)),
    Family("safetensors json depth", hb.safetensors_json_depth, ("convert file",), (16, 100000),
           (16, 100000, 1000000)),
    Family("npz members", hb.npz_members, ("convert file",), (16, 256), (16, 256, 4096)),
    Family("entries, newer entry points", hb.float_tensors, ("async save", "rules", "compat load_variable"),
           (64, 1024), (256, 4096, 32768)),
    Family("keras h5 datasets", hb.keras_h5_datasets, ("convert file", "ls file"), (8, 64), (16, 256, 4096)),
    # Past MAX_GROUP_DEPTH (64) the file is refused: the walk must not first cost depth**2.
    Family("keras h5 nesting", hb.keras_h5_nesting, ("ls file",), (8, 1000), (8, 1000, 20000)),
    Family("savedmodel functions", hb.savedmodel_functions, ("savedmodel show",), (128, 2048),
           (128, 2048, 32768)),
    Family("meta graph functions", hb.meta_graph_functions, ("meta show",), (256, 8192), (256, 8192, 131072)),
    Family("SavedModel meta graph functions", hb.saved_model_meta_graph_functions, ("meta show",), (256, 8192),
           (256, 8192, 131072)),
    Family("SavedModel meta graphs", hb.saved_model_meta_graphs, ("meta show",), (256, 8192), (256, 8192, 131072)),
    # The bytes present stay the same while the zip claims more: the peak must not follow the claim.
    Family("npz lying member sizes", hb.npz_lying_sizes, ("convert file",), (1 << 10, 1 << 22),
           (1 << 10, 1 << 22, 1 << 28)),
)}

# Single hostile inputs (no growth to fit): each must give a TfckptError or succeed.
CASES: dict[str, tuple[Builder, int, tuple[str, ...]]] = {
    "offset 2**63-1": (hb.huge_offset, 1, ("load", "reader[]", "verify")),
    "offset 2**63-16": (hb.huge_offset, 16, ("load", "reader[]", "verify")),
    "rank 64": (hb.high_rank, 64, ("load", "reader[]", "get_slice", "stats", "diff", "convert", "verify")),
    "rank 65": (hb.high_rank, 65, ("load", "reader[]", "get_slice", "stats", "diff", "convert", "verify")),
    "rank 254": (hb.high_rank, 254, ("load", "reader[]", "get_slice", "stats", "diff", "convert", "verify")),
    "float32[0, 2**62]": (hb.empty_huge_dim, 62, ("load", "reader[]", "get_slice", "stats", "diff", "convert",
                                                  "verify")),
    "V1 rank 70": (hb.v1_high_rank, 70, ("load", "reader[]", "get_slice", "stats", "diff", "convert", "verify")),
    "V1 float32[0, 2**62]": (hb.v1_empty_huge_dim, 62, ("load", "reader[]", "get_slice", "stats", "diff", "convert",
                                                        "verify")),
    "slice entries with slices": (hb.nested_slice_entries, 4, ("load", "verify")),
    "safetensors shape [2**64, 0]": (hb.safetensors_shape, 64, ("convert file",)),
    "safetensors shape [2**40, 0]": (hb.safetensors_shape, 40, ("convert file",)),
    "npz dtypes member is a list": (hb.npz_dtypes_member, 3, ("convert file",)),
    "bounded spec float64[2**31, 2**31]": (hb.savedmodel_bounded_spec, 1 << 62, ("savedmodel show",)),
    "savedmodel nested 3000": (hb.savedmodel_nesting, 3000, ("savedmodel show",)),
    "keras h5 float32[2**40], no chunk written": (hb.keras_h5_huge_dataset, 40, ("ls file", "load file",
                                                                                 "convert file")),
    ".keras holding 16 MiB of deflated zeros": (hb.keras_archive_bomb, 16, ("ls file",)),
}
