"""Open + list at 10^4..10^6 small tensors, tfckpt and TensorFlow on the same files, in CPU time.

    python benchmarks/openlist.py --dir /dev/shm/openlist            # builds once, then measures
    python benchmarks/openlist.py --dir /dev/shm/openlist --no-tf    # tfckpt only
    python benchmarks/openlist.py --dir /dev/shm/openlist --rounds 3 # alternate tfckpt and TF 3 times

Checkpoints of N float32[4] tensors named ``model/block_<i // 100>/layer_<i % 100>/kernel``
(``scaling.py``'s small series) are written once into ``--dir`` (kept for the next run; use
tmpfs). Each figure is the best of ``--repeat`` runs of process CPU time (a shared machine's
other processes do not count, but they do share the caches: take the best of several rounds),
with the garbage collector running as normal and paused (``gc.disable()`` around the call).
tfckpt also prints its phases: opening (``load_checkpoint``: the index scan) and listing
(``get_variable_to_shape_map`` of an open reader). TensorFlow
(``tf.train.load_checkpoint(p).get_variable_to_shape_map()``) runs in a child process, so
that importing it does not change tfckpt's heap. The exponent is log(t_max / t_min) /
log(N_max / N_min); 1.0 is linear.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def prefix_for(directory: str, count: int) -> str:
    return os.path.join(directory, f"small-{count}", "ckpt")


def build(directory: str, counts: list[int]) -> None:
    import tfckpt
    value = np.arange(4, dtype=np.float32)
    for count in counts:
        prefix = prefix_for(directory, count)
        if not os.path.exists(prefix + ".index"):
            os.makedirs(os.path.dirname(prefix), exist_ok=True)
            tfckpt.save({f"model/block_{i // 100:05d}/layer_{i % 100:02d}/kernel": value + i for i in range(count)},
                        prefix, sync=False)


def best_cpu_ms(step: Callable[[], Any], repeat: int, paused: bool) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        if paused:
            gc.disable()
        start = time.process_time()
        result = step()
        times.append(time.process_time() - start)
        gc.enable()
        del result
    return min(times) * 1e3


def measure(tool: str, directory: str, counts: list[int], repeat: int) -> dict[str, dict[int, float]]:
    """``{series: {count: best CPU ms}}`` for one tool, in this process."""
    steps: dict[str, Callable[[str], Callable[[], Any]]]
    if tool == "tf":
        import tensorflow as tf
        steps = {"open+list": lambda p: lambda: tf.train.load_checkpoint(p).get_variable_to_shape_map()}
    else:
        import tfckpt

        def listing(p: str) -> Callable[[], Any]:
            reader = tfckpt.load_checkpoint(p)
            return reader.get_variable_to_shape_map

        steps = {"open+list": lambda p: lambda: tfckpt.load_checkpoint(p).get_variable_to_shape_map(),
                 "open": lambda p: lambda: tfckpt.load_checkpoint(p),
                 "list": listing}
    steps[next(iter(steps))](prefix_for(directory, counts[0]))()  # warm imports and caches
    out: dict[str, dict[int, float]] = {}
    for name, make in steps.items():
        for paused in (False, True):
            series = out.setdefault(f"{name}{' (gc paused)' if paused else ''}", {})
            for count in counts:
                series[count] = best_cpu_ms(make(prefix_for(directory, count)), repeat, paused)
    return out


def exponent(series: dict[int, float]) -> float:
    (n0, t0), (n1, t1) = min(series.items()), max(series.items())
    return math.log(t1 / t0) / math.log(n1 / n0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="where the checkpoints are written and kept (tmpfs)")
    parser.add_argument("--counts", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the tools this many times; best of all")
    parser.add_argument("--no-tf", action="store_true")
    parser.add_argument("--child", choices=("tfckpt", "tf"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if args.child:
        print(json.dumps(measure(args.child, args.dir, counts, args.repeat)))
        return
    build(args.dir, counts)
    tools = ["tfckpt"] if args.no_tf else ["tfckpt", "tf"]
    best: dict[str, dict[str, dict[int, float]]] = {}
    for _ in range(args.rounds):
        for tool in tools:
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            done = subprocess.run([sys.executable, __file__, "--child", tool, "--dir", args.dir,
                                   "--counts", args.counts, "--repeat", str(args.repeat)],
                                  capture_output=True, text=True, env=env, check=True)
            for series, values in json.loads(done.stdout.strip().splitlines()[-1]).items():
                kept = best.setdefault(tool, {}).setdefault(series, {})
                for count, ms in values.items():
                    kept[int(count)] = min(kept.get(int(count), math.inf), ms)
    print("| tool, series | " + " | ".join(f"{c:,}" for c in counts) + " | exponent |")
    print("|---|" + "---|" * (len(counts) + 1))
    for tool, table in best.items():
        for series, values in table.items():
            print(f"| {tool} {series} | " + " | ".join(f"{values[c]:,.1f} ms" for c in counts)
                  + f" | {exponent(values):.2f} |")


if __name__ == "__main__":
    main()
