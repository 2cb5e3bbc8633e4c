"""How each operation's cost grows: time and traced peak memory against size, with a fitted exponent.

    python benchmarks/scaling.py                          # 10^3..10^5 small tensors, 64 MiB..1 GiB large
    python benchmarks/scaling.py --full                   # adds 10^6 small tensors and TensorFlow beside it
    python benchmarks/scaling.py --large-max-mib 8192     # 64, 256, 1024, 4096, 8192 MiB (RAM: ~2x the largest)
    python benchmarks/scaling.py --small 1000,10000 --large "" --dir /dev/shm

Operations: bare write (the same arrays into one file by ``writelines``: the floor for save),
save (``sync=False``, to a fresh prefix each run), bare read (every data file read whole into one buffer by
``readinto``: no format, no checksums, the floor for load-all), open + list (``load_checkpoint(p).get_variable_to_shape_map()``),
load-all (``load``), verify (``verify_checkpoint``), convert (to a new safetensors file), tree
(``checkpoint_tree`` of an open reader) and stats (``checkpoint_stats``). Small: N float32[4]
tensors named ``model/block_<i // 100>/layer_<i % 100>/kernel``. Large: float32 tensors of
16 MiB, 64 MiB in all up to the maximum, each size 4x the previous.

Each figure: median process CPU time (all threads; other processes on a shared machine do not
count) and wall time over the repeats, then tracemalloc's peak over one more, untimed run.
The exponent is the least-squares slope of log(CPU time) and log(peak) against log(size);
1.0 is linear. The smallest sizes carry fixed costs (imports are warmed first), which lowers
the slope a little; the largest dominate it. With ``--full`` (10^6 tensors), TensorFlow's
figures for the same checkpoint run in a child process: ``tf.train.load_checkpoint`` +
``get_variable_to_shape_map``, reading every tensor with ``get_tensor``, and writing the same
10^6 tensors with ``tf.raw_ops.SaveV2`` (the raw saver; building 10^6 ``tf.Variable`` objects
for ``tf.train.Checkpoint`` takes longer than the write itself).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import tfckpt

OPERATIONS = ("bare write", "save", "bare read", "open+list", "load-all", "verify", "convert", "tree", "stats")
LARGE_TENSOR = (1024, 4096)  # float32: 16 MiB


def small_tensors(count: int) -> dict[str, np.ndarray]:
    value = np.arange(4, dtype=np.float32)
    return {f"model/block_{i // 100:05d}/layer_{i % 100:02d}/kernel": value + i for i in range(count)}


def large_tensors(mib: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"model/layer_{i:04d}/kernel": rng.standard_normal(LARGE_TENSOR, dtype=np.float32)
            for i in range(mib // 16)}


def operations(tensors: dict[str, np.ndarray], prefix: str, directory: str) -> dict[str, Callable[[], Any]]:
    out = os.path.join(directory, "converted.safetensors")

    def bare_read() -> list[np.ndarray]:  # the floor for load-all: every data file read whole, no format
        out = []
        for name in sorted(os.listdir(os.path.dirname(prefix))):
            if ".data-" in name:
                with open(os.path.join(os.path.dirname(prefix), name), "rb", buffering=0) as file:
                    buffer = np.empty(os.fstat(file.fileno()).st_size, np.uint8)
                    view, done = memoryview(buffer), 0
                    while done < len(view):  # one read returns at most ~2 GiB on Linux
                        done += file.readinto(view[done:]) or len(view)
                    out.append(buffer)
        return out

    def bare_write() -> None:  # the floor for save: the same bytes into one file, no format
        with open(os.path.join(directory, "bare-write"), "wb") as file:
            file.writelines(value.data for value in tensors.values())

    return {"bare write": bare_write,
            "save": lambda: tfckpt.save(tensors, prefix, sync=False),
            "bare read": bare_read,
            "open+list": lambda: tfckpt.load_checkpoint(prefix).get_variable_to_shape_map(),
            "load-all": lambda: tfckpt.load(prefix),
            "verify": lambda: tfckpt.verify_checkpoint(prefix),
            "convert": lambda: tfckpt.convert_checkpoint(prefix, out),
            "tree": lambda: tfckpt.checkpoint_tree(tfckpt.load_checkpoint(prefix)),
            "stats": lambda: tfckpt.checkpoint_stats(prefix)}


def untimed_cleanup(name: str, prefix: str, directory: str) -> Callable[[], None]:
    """What runs before each timed run of ``name``: every save goes to a fresh prefix and every
    convert to a new file, so no run pays for unlinking the previous one's output, and an
    overwrite's old and new files (8 GiB each at the largest size) never share the memory."""
    def cleanup() -> None:
        if name == "save":
            shutil.rmtree(os.path.dirname(prefix), ignore_errors=True)
        elif name == "convert":
            for entry in os.listdir(directory):
                if entry.startswith("converted"):
                    os.remove(os.path.join(directory, entry))
    return cleanup


def measure(step: Callable[[], Any], repeat: int, traced: bool, cleanup: Callable[[], None]) -> dict[str, float]:
    cpu, wall = [], []
    for _ in range(repeat):
        cleanup()
        gc.collect()
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        result = step()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
        del result
    peak = float("nan")
    if traced:
        cleanup()
        gc.collect()
        tracemalloc.start()
        result = step()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del result
    return {"cpu": statistics.median(cpu), "wall": statistics.median(wall), "peak": peak}


def slope(sizes: list[float], values: list[float]) -> float:
    pairs = [(s, v) for s, v in zip(sizes, values) if v > 0 and not np.isnan(v)]
    if len(pairs) < 2:
        return float("nan")
    x, y = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    return float(np.polyfit(x, y, 1)[0])


def run_series(kind: str, sizes: list[int], directory: str, traced: bool,
               repeats: int | None = None) -> dict[int, dict[str, dict[str, float]]]:
    results: dict[int, dict[str, dict[str, float]]] = {}
    for size in sizes:
        tensors = small_tensors(size) if kind == "small" else large_tensors(size)
        prefix = os.path.join(directory, f"{kind}-{size}", "ckpt")
        ops = operations(tensors, prefix, directory)
        nbytes = sum(v.nbytes for v in tensors.values())
        repeat = repeats or (3 if (size <= 100_000 if kind == "small" else size <= 1024) else 1)
        row: dict[str, dict[str, float]] = {}
        for name in OPERATIONS:
            row[name] = measure(ops[name], repeat, traced, untimed_cleanup(name, prefix, directory))
            if name == "bare write":
                os.remove(os.path.join(directory, "bare-write"))
            if name == "save":
                # The source arrays are not needed again: holding them would put an 8 GiB run's
                # reads in competition with them for the page cache, which measures the machine.
                tensors.clear()
                gc.collect()
            print(f"  {kind} {size:>9} {name:<10} cpu {row[name]['cpu'] * 1e3:10.1f} ms  wall "
                  f"{row[name]['wall'] * 1e3:10.1f} ms  peak {row[name]['peak'] / 2**20:9.1f} MiB"
                  f"  (data {nbytes / 2**20:.1f} MiB; load {os.getloadavg()[0]:.2f})", flush=True)
        results[size] = row
        del tensors, ops
        shutil.rmtree(os.path.dirname(prefix), ignore_errors=True)
        for entry in os.listdir(directory):
            if entry.startswith("converted"):
                os.remove(os.path.join(directory, entry))
    return results


def print_table(kind: str, results: dict[int, dict[str, dict[str, float]]]) -> None:
    sizes = sorted(results)
    unit = "tensors" if kind == "small" else "MiB"
    print(f"\n| {kind} ({unit}) | " + " | ".join(f"{s:,}" for s in sizes) + " | exponent (CPU time) | exponent (peak) |")
    print("|---|" + "---|" * (len(sizes) + 2))
    for name in OPERATIONS:
        cells = [f"{results[s][name]['cpu'] * 1e3:.1f} ms / {results[s][name]['peak'] / 2**20:.1f} MiB" for s in sizes]
        print(f"| {name} | " + " | ".join(cells) + f" | {slope(sizes, [results[s][name]['cpu'] for s in sizes]):.2f} "
              f"| {slope(sizes, [results[s][name]['peak'] for s in sizes]):.2f} |")


def tensorflow_child(count: int, directory: str) -> None:
    """TensorFlow's figures for ``count`` small tensors (the same names and values)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    tensors = small_tensors(count)
    ours = os.path.join(directory, "tf-source", "ckpt")
    tfckpt.save(tensors, ours, sync=False)
    names = list(tensors)
    values = [tf.constant(v) for v in tensors.values()]  # made before timing: TF's own tensors
    theirs = os.path.join(directory, "tf-written", "ckpt")
    out = {}

    def read_all() -> dict[str, Any]:
        reader = tf.train.load_checkpoint(ours)
        return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}

    for name, step in (("save (SaveV2)", lambda: tf.raw_ops.SaveV2(prefix=theirs, tensor_names=names,
                                                                   shape_and_slices=[""] * len(names), tensors=values)),
                       ("open+list", lambda: tf.train.load_checkpoint(ours).get_variable_to_shape_map()),
                       ("load-all", read_all)):
        cpu, wall = time.process_time(), time.perf_counter()
        step()
        out[name] = {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", default="1000,10000,100000", help="tensor counts")
    parser.add_argument("--large", default="64,256,1024", help="sizes in MiB")
    parser.add_argument("--large-max-mib", type=int, help="large sizes 64, 256, ... up to this (overrides --large)")
    parser.add_argument("--full", action="store_true", help="add 10^6 small tensors and TensorFlow's figures")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc runs")
    parser.add_argument("--repeat", type=int, help="timed runs per figure (default: 3; 1 above 10^5 tensors or 1 GiB)")
    parser.add_argument("--dir", default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--tf-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tf_child:
        tensorflow_child(args.tf_child, args.dir)
        return
    directory = tempfile.mkdtemp(prefix="tfckpt-scaling-", dir=args.dir)
    small = [int(s) for s in args.small.split(",") if s] + ([1_000_000] if args.full else [])
    large = [int(s) for s in args.large.split(",") if s]
    if args.large_max_mib:
        large = [64 * 4 ** k for k in range(10) if 64 * 4 ** k <= args.large_max_mib]
        if large[-1] != args.large_max_mib:  # the maximum itself, e.g. 8 GiB after 4 GiB
            large.append(args.large_max_mib)
    print(f"# tfckpt {tfckpt.__version__}, threads {tfckpt.get_num_threads()}, scratch {directory}, "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    tfckpt.save({"warm": np.ones(2)}, os.path.join(directory, "warm", "ckpt"), sync=False)  # imports
    try:
        results = {}
        if small:
            results["small"] = run_series("small", small, directory, not args.no_trace, args.repeat)
        if large:
            results["large"] = run_series("large", large, directory, not args.no_trace, args.repeat)
        for kind, series in results.items():
            print_table(kind, series)
        if args.full:
            done = subprocess.run([sys.executable, __file__, "--tf-child", str(small[-1]), "--dir", directory],
                                  capture_output=True, text=True, check=False)
            if done.returncode == 0:
                theirs = json.loads(done.stdout.strip().splitlines()[-1])
                ours = results["small"][small[-1]]
                print(f"\n| {small[-1]:,} tensors | tfckpt CPU / wall | TensorFlow CPU / wall |\n|---|---|---|")
                for name, key in (("save (SaveV2)", "save"), ("open+list", "open+list"), ("load-all", "load-all")):
                    print(f"| {name} | {ours[key]['cpu']:.2f} / {ours[key]['wall']:.2f} s | "
                          f"{theirs[name]['cpu']:.2f} / {theirs[name]['wall']:.2f} s |")
            else:
                print("TensorFlow child failed:", done.stderr.strip().splitlines()[-1:])
        print(f"# load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
