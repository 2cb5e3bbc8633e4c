"""Threads as a setting: read-all and write against the cores available and ``set_num_threads``.

    python benchmarks/threads.py                     # CPU sets "0" and "0,1" (taskset), threads 1..cores
    python benchmarks/threads.py --cpus 0,0-3,0-7 --mib 1024 --rounds 5 --dir /dev/shm

For each CPU set (``taskset -c``) and each thread count from 1 to the size of the largest set, a child
process pinned to the set loads 512 MiB in 64 float32 tensors (``tfckpt.load``, CRC on, page
cache warm) and saves them (``tfckpt.save(..., sync=False)``) with
``tfckpt.set_num_threads(n)``. The configurations run in rounds, in alternating order (forward,
then backward), and each child's figure is the median of its repeats; the table shows the
median over rounds of wall time (what the caller waits for) and of process CPU time (all
threads). The load average is printed before and after.
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
import time

import numpy as np


def child(directory: str, threads: int, mib: int, repeat: int) -> None:
    import tfckpt
    tfckpt.set_num_threads(threads)
    rows = (mib << 20) // (64 * 4096 * 4)
    rng = np.random.default_rng(0)
    tensors = {f"layer_{i:02d}/kernel": rng.standard_normal((rows, 4096), dtype=np.float32) for i in range(64)}
    prefix = os.path.join(directory, f"ckpt-{os.getpid()}")
    out: dict[str, dict[str, float]] = {}
    for name, step in (("write", lambda: tfckpt.save(tensors, prefix, sync=False)), ("read-all", lambda: tfckpt.load(prefix))):
        step()  # warm: files exist (overwrite) and are in the page cache
        cpu, wall = [], []
        for _ in range(repeat):
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            step()
            cpu.append(time.process_time() - start_cpu)
            wall.append(time.perf_counter() - start_wall)
        out[name] = {"cpu": statistics.median(cpu), "wall": statistics.median(wall)}
    for entry in os.listdir(directory):
        if entry.startswith(os.path.basename(prefix)):
            os.remove(os.path.join(directory, entry))
    print(json.dumps(out))


def cpu_count(cpus: str) -> int:
    total = 0
    for part in cpus.split(","):
        low, _, high = part.partition("-")
        total += int(high or low) - int(low) + 1
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", default="0,0-1", help="CPU sets for taskset -c, separated by commas between sets "
                        "only when a set has no comma itself (use ranges: 0-1)")
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default="/dev/shm")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.dir, args.threads, args.mib, args.repeat)
        return
    directory = tempfile.mkdtemp(prefix="tfckpt-threads-", dir=args.dir)
    most = max(cpu_count(cpus) for cpus in args.cpus.split(","))  # more threads than cores too: the default's cost
    configs = [(cpus, n) for cpus in args.cpus.split(",") for n in range(1, most + 1)]
    results: dict[tuple[str, int], list[dict[str, dict[str, float]]]] = {c: [] for c in configs}
    print(f"# {args.mib} MiB in 64 tensors, {args.rounds} rounds x {args.repeat} repeats; "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    try:
        for round_ in range(args.rounds):
            for cpus, n in configs if round_ % 2 == 0 else reversed(configs):
                done = subprocess.run(["taskset", "-c", cpus, sys.executable, __file__, "--child", "--threads", str(n),
                                       "--dir", directory, "--mib", str(args.mib), "--repeat", str(args.repeat)],
                                      capture_output=True, text=True, check=True)
                results[(cpus, n)].append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print("\n| taskset -c | num_threads | read-all wall / CPU | write wall / CPU |\n|---|---|---|---|")
    for cpus, n in configs:
        cells = []
        for op in ("read-all", "write"):
            wall = statistics.median(r[op]["wall"] for r in results[(cpus, n)])
            cpu = statistics.median(r[op]["cpu"] for r in results[(cpus, n)])
            cells.append(f"{wall * 1e3:.0f} / {cpu * 1e3:.0f} ms ({args.mib / 1024 / wall:.2f} GiB/s)")
        print(f"| {cpus} | {n} | " + " | ".join(cells) + " |")
    print(f"# load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
