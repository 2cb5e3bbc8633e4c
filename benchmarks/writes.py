"""Writes at the machine's limit: ``tfckpt.save(..., sync=False)`` against a bare write loop.

    python benchmarks/writes.py                      # 512 MiB in 64 tensors, tmpfs and disk, 7 pairs
    python benchmarks/writes.py --pairs 11 --where tmpfs
    python benchmarks/writes.py --mib 64 --pairs 3   # a quick look
    python benchmarks/writes.py --where disk --modes overwrite --settle   # previous files clean first

In one process, alternating pairs (tfckpt, bare, tfckpt, bare, ..., the order swapped every
other pair so neither side always runs right after the other's file was freed), for each of:

- ``fresh``: every save goes to a new prefix (the previous one is removed untimed);
- ``overwrite``: every save goes to the same prefix, replacing the checkpoint already there.

With ``--settle``, ``os.sync()`` runs (untimed) before every run: the files already there are
clean, as they are when saves come further apart than the kernel's writeback delay (30 s by
default); without it, back-to-back runs find the previous run's pages still dirty.

The bare loop is the floor: the same arrays written by ``f.writelines`` into one file opened
``"wb"`` (no format, no checksums, no index). For ``overwrite`` it truncates the old file in
place (as ``open(path, "wb")`` does); ``bare-replace`` writes a new file and renames it over
the old one, the atomic pattern tfckpt follows, and is shown for reference.

Reported per case: medians of wall time, of process CPU time (all threads) and of what the
kernel wrote back to storage during the run (``/proc/vmstat`` ``nr_written``: the page
cache's writeback of any file, the previous runs' included) per side, and
the median of the per-pair ratios bare/tfckpt (above 1: tfckpt faster). Wall time is what a
caller waits for; CPU time shows the work done (less disturbed by other processes on a shared
machine). The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

import tfckpt

PLACES = {"tmpfs": "/dev/shm", "disk": None}  # None: the default temporary directory


def bare_write(tensors: dict[str, np.ndarray], path: str) -> None:
    with open(path, "wb") as out:
        out.writelines(value.data for value in tensors.values())


def bare_replace(tensors: dict[str, np.ndarray], path: str) -> None:
    temp = path + ".tmp"
    with open(temp, "wb") as out:
        out.writelines(value.data for value in tensors.values())
    os.replace(temp, path)


def remove_prefix(prefix: str) -> None:
    directory, base = os.path.split(prefix)
    for entry in os.listdir(directory):
        if entry.startswith(base):
            os.remove(os.path.join(directory, entry))


def written_pages() -> int:
    """Pages the kernel has written back to storage since boot (Linux ``/proc/vmstat``; 0 elsewhere)."""
    try:
        with open("/proc/vmstat") as stats:
            return next((int(line.split()[1]) for line in stats if line.startswith("nr_written ")), 0)
    except OSError:
        return 0


def timed(step: Callable[[], object]) -> tuple[float, float, float]:
    """(wall s, CPU s, MiB the kernel wrote back to storage meanwhile, from any file)."""
    pages = written_pages()
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, (written_pages() - pages) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_case(tensors: dict[str, np.ndarray], directory: str, mode: str, pairs: int,
             peers: tuple[str, ...], settle: bool = False) -> dict[str, dict[str, list[float]]]:
    counter = [0]

    def target(name: str) -> str:
        if mode == "overwrite":
            return os.path.join(directory, name)
        counter[0] += 1
        return os.path.join(directory, f"{name}-{counter[0]}")

    def step_for(side: str) -> tuple[Callable[[], object], str]:
        path = target(side)
        if side == "tfckpt":
            return (lambda: tfckpt.save(tensors, path, sync=False)), path
        if side == "bare":
            return (lambda: bare_write(tensors, path)), path
        return (lambda: bare_replace(tensors, path)), path

    sides = ("tfckpt", *peers)
    out: dict[str, dict[str, list[float]]] = {side: {"wall": [], "cpu": [], "written": []} for side in sides}
    for round_ in range(pairs + 1):  # round 0 warms up (and, for overwrite, creates the old files)
        order = sides if round_ % 2 == 0 else tuple(reversed(sides))
        for side in order:
            step, path = step_for(side)
            if settle:
                os.sync()  # untimed: every earlier file on storage, as after saves minutes apart
            wall, cpu, written = timed(step)
            if round_:
                out[side]["wall"].append(wall)
                out[side]["cpu"].append(cpu)
                out[side]["written"].append(written)
            if mode == "fresh":
                remove_prefix(path)  # untimed: a fresh prefix each time, no files piling up
    for side in sides:
        remove_prefix(os.path.join(directory, side))
    return out


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512, help="total size (64 float32 tensors)")
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--where", default="tmpfs,disk")
    parser.add_argument("--modes", default="fresh,overwrite")
    parser.add_argument("--threads", type=int, help="tfckpt.set_num_threads (default: the cores available)")
    parser.add_argument("--settle", action="store_true",
                        help="os.sync() before each run (untimed): the previous files are clean, as when saves "
                             "are further apart than the kernel's writeback delay (vm.dirty_expire_centisecs)")
    args = parser.parse_args()
    if args.threads is not None:
        tfckpt.set_num_threads(args.threads)
    rows = (args.mib << 20) // (64 * 4096 * 4)
    rng = np.random.default_rng(0)
    tensors = {f"layer_{i:02d}/kernel": rng.standard_normal((rows, 4096), dtype=np.float32) for i in range(64)}
    print(f"# {sum(v.nbytes for v in tensors.values()) >> 20} MiB in 64 tensors; threads {tfckpt.get_num_threads()}; "
          f"cores {len(os.sched_getaffinity(0))}; {args.pairs} alternating pairs; tfckpt {tfckpt.__version__}")
    for place in args.where.split(","):
        directory = tempfile.mkdtemp(prefix="tfckpt-writes-", dir=PLACES[place])
        try:
            for mode in args.modes.split(","):
                peers = ("bare", "bare-replace") if mode == "overwrite" else ("bare",)
                before = loadavg()
                result = run_case(tensors, directory, mode, args.pairs, peers, args.settle)
                ours = result["tfckpt"]
                line = [(f"{place:<5} {mode + (' settled' if args.settle else ''):<17} tfckpt {statistics.median(ours['wall']) * 1e3:7.1f} ms wall "
                         f"{statistics.median(ours['cpu']) * 1e3:7.1f} ms cpu "
                         f"{statistics.median(ours['written']):6.0f} MiB written back")]
                for peer in peers:
                    theirs = result[peer]
                    ratios = [b / a for a, b in zip(ours["wall"], theirs["wall"])]
                    cpu_ratios = [b / a for a, b in zip(ours["cpu"], theirs["cpu"])]
                    line.append(f"{peer} {statistics.median(theirs['wall']) * 1e3:7.1f} ms wall "
                                f"{statistics.median(theirs['cpu']) * 1e3:7.1f} ms cpu "
                                f"{statistics.median(theirs['written']):6.0f} MiB written back: {peer}/tfckpt wall "
                                f"{statistics.median(ratios):.2f}x (pairs {min(ratios):.2f}-{max(ratios):.2f}), "
                                f"cpu {statistics.median(cpu_ratios):.2f}x")
                print("; ".join(line) + f"  [load {before} -> {loadavg()}]")
                sys.stdout.flush()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
