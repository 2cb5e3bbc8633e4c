"""Before and after: the same small operations timed on two commits of tfckpt, in alternation.

    python benchmarks/commits.py 8be3d7d^ HEAD            # the filesystem seam's cost (issue 25)
    python benchmarks/commits.py v0.2.0 HEAD --rounds 15 --dir /dev/shm

Each commit is exported (``git archive``) into a scratch directory; every round runs one child
process per commit, in alternating order (A, B, then B, A), with that commit's ``src`` first on
``sys.path``. A child times each operation with process CPU time (best of its repeats, the
garbage collector left on as in real use) and prints JSON; the table shows, per operation,
the median over rounds for each commit and the median of the per-round ratios B/A (below 1:
B faster). CPU time is used because the wall time of a 2-core machine shared with other work
says more about the neighbours than about the code.

Operations (local files, ``sync=False`` unless named): save of 8 small tensors (the per-call
cost of a training loop's checkpoint), the same with ``sync=True``, save of 2,000 small
tensors, open + list of that checkpoint, load of it, one ``get_tensor``, verify, and a
``CheckpointManager.save`` with ``max_to_keep=2`` (state file and retention).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable

CHILD = r"""
import gc, json, os, sys, time
import numpy as np
import tfckpt

directory, repeat = sys.argv[1], int(sys.argv[2])
few = {f"layer_{i}/kernel": np.full((64, 64), i, np.float32) for i in range(8)}
many = {f"model/block_{i // 100:03d}/layer_{i % 100:02d}/kernel": np.arange(4, dtype=np.float32) + i for i in range(2000)}
prefix_few, prefix_many = os.path.join(directory, "few"), os.path.join(directory, "many")
tfckpt.save(many, prefix_many, sync=False)
manager_dir = os.path.join(directory, "managed")
manager = tfckpt.CheckpointManager(tfckpt.Checkpoint(**{"w": np.zeros((64, 64), np.float32)}), manager_dir, max_to_keep=2)

def best(step):
    step()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return min(times)

out = {
    "save 8 tensors": best(lambda: tfckpt.save(few, prefix_few, sync=False)),
    "save 8 tensors, sync": best(lambda: tfckpt.save(few, prefix_few)),
    "save 2,000 tensors": best(lambda: tfckpt.save(many, prefix_many, sync=False)),
    "open + list 2,000": best(lambda: tfckpt.load_checkpoint(prefix_many).get_variable_to_shape_map()),
    "load 2,000": best(lambda: tfckpt.load(prefix_many)),
    "open + get_tensor": best(lambda: tfckpt.load_checkpoint(prefix_many).get_tensor("model/block_007/layer_07/kernel")),
    "verify 2,000": best(lambda: tfckpt.verify_checkpoint(prefix_many)),
    "manager save": best(lambda: manager.save()),
}
print(json.dumps(out))
"""


def export(commit: str, into: str) -> str:
    """The commit's tree under ``into``; returns its ``src`` directory."""
    os.makedirs(into)
    archive = subprocess.run(["git", "archive", commit, "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return os.path.join(into, "src")


def run_child(src: str, scratch: str, repeat: int) -> dict[str, float]:
    os.makedirs(scratch, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run([sys.executable, "-c", CHILD, scratch, str(repeat)], check=True, capture_output=True,
                          text=True, env=env)
    shutil.rmtree(scratch)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dir", default=None, help="scratch directory (default: a new temporary one)")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="tfckpt-commits-", dir=args.dir)
    try:
        sources = {name: export(name, os.path.join(scratch, f"tree-{i}")) for i, name in enumerate((args.before, args.after))}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in sources}
        print(f"# {args.before} vs {args.after}: {args.rounds} rounds x best of {args.repeat}; "
              f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for round_ in range(args.rounds):
            order = list(sources) if round_ % 2 == 0 else list(reversed(sources))
            for name in order:
                results[name].append(run_child(sources[name], os.path.join(scratch, "work"), args.repeat))
        before, after = results[args.before], results[args.after]
        median: Callable[[list[dict[str, float]], str], float] = lambda runs, op: statistics.median(r[op] for r in runs)
        print(f"\n| operation (CPU, best of {args.repeat}, median of {args.rounds} rounds) | {args.before} | {args.after} | ratio |")
        print("|---|---|---|---|")
        for op in before[0]:
            ratio = statistics.median(b[op] / a[op] for a, b in zip(before, after))
            print(f"| {op} | {median(before, op) * 1e3:.2f} ms | {median(after, op) * 1e3:.2f} ms | {ratio:.2f}x |")
        print(f"# load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
