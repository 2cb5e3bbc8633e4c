"""tfckpt side by side with TensorFlow and safetensors: one run, same files, ratios.

    python benchmarks/bench.py                 # all workloads (about 10 minutes, ~15 GiB of disk)
    python benchmarks/bench.py --quick         # smaller sizes, fewer repeats (about a minute)
    python benchmarks/bench.py --workloads W1,W4 --repeat 7
    python benchmarks/bench.py --workloads ASYNC               # asynchronous saves: blocked time
    python benchmarks/bench.py --workloads PT --repeat 11      # load(framework="pt", mmap=True) vs safetensors
    taskset -c 0 python benchmarks/bench.py --workloads W1 --threads 1   # thread scaling

Each measurement runs in a fresh child process, so its memory figures belong to that one
operation: ``peak+MiB`` is the growth of the peak resident set (ru_maxrss) over the child's
baseline after setup, and ``traced`` the peak of allocations tracemalloc sees (numpy buffers,
so tfckpt's and safetensors', not TensorFlow's C++ ones). Files are read warm: the page cache
is filled with plain reads first. Times are medians over the repeats.

Disk-backed write times on a VM are dominated by the kernel's dirty-page writeback (the same
plain ``f.write`` of 4 GiB took 2.8 s to 12.8 s here depending on what was still being
flushed), so ``write_tmpfs`` repeats each write on /dev/shm, where only the libraries' own
cost shows. tfckpt fsyncs by default; ``tfckpt-nosync`` (``sync=False``) is the like-for-like
comparison with TensorFlow and safetensors, which do not. ``bare-write`` is the floor for
writes: the same bytes written to one file by a plain ``f.write`` loop (no format, no checksums).

Workloads (issue 7):
  W1  64 float32 tensors, 1 GiB: write all; open + read all (CRC on); read all (CRC off);
      read all as zero-copy memory-mapped views (CRC on); open + read one
  W2  12,000 small tensors (a multi-block index): open + list; open + read one; read all
  W3  one 4 GiB float32 tensor: write and read, watching peak memory
  W4  a 256-row slice of a 1 GiB [262144, 1024] float32 tensor
  W5  one [12000, 256] float32 tensor saved as 3,000 row slices (a TF1 partitioned embedding):
      write all slices; read the assembled tensor (safetensors has no slices: no peer)
  W6  400 float32 tensors (6 MiB) served over HTTP from localhost with 30 ms and 100 ms of
      latency injected per request: tfckpt.load(url), and a loop of get_tensor (one request
      each) for contrast. Neither TensorFlow nor safetensors reads plain HTTP, so the peer is
      the floor: latency x 2 round trips (index, data) + the bytes at the measured bandwidth.
  PT  W1's tensors (1 GiB) into PyTorch: ``tfckpt.load(prefix, framework="pt", mmap=True)``
      against ``safetensors.torch.load_file`` of the same tensors, timed in alternating pairs in
      one child process (each pair in turn starting with the other tool), CRC on and off
      (safetensors has no checksums: off is the like-for-like figure); then each load once
      more under tracemalloc with the growth of anonymous resident memory (a copy lands there;
      mapped file pages do not).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

TOOLS = ("tfckpt", "tfckpt-nosync", "tensorflow", "safetensors", "bare-write")


def sizes(quick: bool) -> dict[str, Any]:
    return {"W1": (16 if quick else 64, (256 if quick else 1024, 4096)),  # count, shape
            "W2": 2000 if quick else 12_000,
            "W3": (1 << 26) if quick else (1 << 30),  # float32 elements: 256 MiB / 4 GiB
            "W4": (1 << 14) if quick else (1 << 18),  # rows of 1024 float32
            "W5": 1000 if quick else 3000}  # slices of 4 rows of 256 float32


# ---- data ---------------------------------------------------------------------------------

def make_tensors(workload: str, quick: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    size = sizes(quick)[workload]
    if workload == "W1":
        count, shape = size
        return {f"layer_{i:02d}/kernel": rng.standard_normal(shape, dtype=np.float32) for i in range(count)}
    if workload == "W2":
        return {f"block_{i // 100:03d}/layer_{i % 100:02d}/bias": rng.standard_normal(16, dtype=np.float32)
                for i in range(size)}
    if workload == "W3":
        return {"huge": np.ones(size, dtype=np.float32)}
    if workload == "W5":
        return {SLICED: rng.standard_normal((4 * size, 256), dtype=np.float32)}
    return {"embedding": rng.standard_normal((size, 1024), dtype=np.float32)}


def one_name(workload: str, quick: bool) -> str:
    names = sorted(make_tensors(workload, quick))
    return names[len(names) // 2]


SLICED = "partitioned/embedding"  # W5's one tensor, written as 4-row slices
SLICE_ROWS = 4

TMPFS = "/dev/shm"


def paths(directory: str, workload: str, tmpfs: bool = False) -> dict[str, str]:
    if tmpfs:
        directory = os.path.join(TMPFS, "tfckpt-bench")
    return {"tfckpt": os.path.join(directory, f"{workload}-tfckpt", "ckpt"),
            "tfckpt-nosync": os.path.join(directory, f"{workload}-tfckpt", "ckpt"),
            "tensorflow": os.path.join(directory, f"{workload}-tf", "ckpt"),
            "safetensors": os.path.join(directory, f"{workload}.safetensors"),
            "bare-write": os.path.join(directory, f"{workload}.bin")}


# ---- operations, run in the child ---------------------------------------------------------

# ---- W6: a checkpoint behind HTTP latency ----------------------------------------------------

W6_LATENCIES = (0.03, 0.1)


def serve_with_latency(directory: str, latency: float) -> tuple[Any, list[str]]:
    """A threaded HTTP server on localhost with Range support, sleeping ``latency`` before
    each answer; returns it and the list it appends each request to."""
    import re
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.answer(body=False)

        def do_GET(self) -> None:
            self.answer(body=True)

        def answer(self, body: bool) -> None:
            seen.append(f"{self.command} {self.headers.get('Range', '')}")
            time.sleep(latency)
            path = os.path.join(directory, self.path.lstrip("/"))
            if not os.path.isfile(path):
                self.send_error(404)
                return
            with open(path, "rb") as f:
                data = f.read()
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if match:
                start, end = int(match.group(1)), int(match.group(2) or len(data) - 1) + 1
                data_out = data[start:end]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            else:
                data_out = data
                self.send_response(200)
            self.send_header("Content-Length", str(len(data_out)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if body:
                self.wfile.write(data_out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def run_w6(directory: str, repeat: int) -> dict[str, Any]:
    import tfckpt
    rng = np.random.default_rng(0)
    tensors = {f"layer_{i:03d}/w": rng.standard_normal(4000, dtype=np.float32) for i in range(400)}
    prefix = tfckpt.save(tensors, os.path.join(directory, "w6", "ck"))
    files = [os.path.join(directory, "w6", f) for f in os.listdir(os.path.join(directory, "w6"))]
    total = sum(os.path.getsize(f) for f in files)
    results: dict[str, Any] = {"bytes": total}
    server, seen = serve_with_latency(os.path.dirname(prefix), 0.0)
    url = f"http://127.0.0.1:{server.server_address[1]}/ck"
    start = time.perf_counter()  # bandwidth: the same bytes in plain whole-file GETs, no latency
    import urllib.request
    for name in ("ck.index", "ck.data-00000-of-00001"):
        urllib.request.urlopen(url.rsplit("/", 1)[0] + "/" + name).read()
    bandwidth = total / (time.perf_counter() - start)
    server.shutdown()
    for latency in W6_LATENCIES:
        server, seen = serve_with_latency(os.path.dirname(prefix), latency)
        url = f"http://127.0.0.1:{server.server_address[1]}/ck"
        times = []
        for _ in range(repeat):
            seen.clear()
            begin = time.perf_counter()
            loaded = tfckpt.load(url)
            times.append(time.perf_counter() - begin)
        assert all(np.array_equal(loaded[n], v) for n, v in tensors.items())
        requests = len(seen)
        seen.clear()
        begin = time.perf_counter()
        reader = tfckpt.load_checkpoint(url)
        for name in reader:
            reader.get_tensor(name)
        loop = time.perf_counter() - begin
        loop_requests = len(seen)
        server.shutdown()
        floor = 2 * latency + total / bandwidth
        results[f"{int(latency * 1000)}ms"] = {"load": statistics.median(times), "requests": requests,
                                                "floor": floor, "get_tensor_loop": loop,
                                                "loop_requests": loop_requests}
    return results


def write_sliced_op(tool: str, value: np.ndarray, path: str) -> Callable[[], None]:
    """W5: every 4-row slice of one tensor, as TF1's partitioned variables are saved."""
    rows, cols = value.shape
    specs = [f"{rows} {cols} {start},{SLICE_ROWS}:-" for start in range(0, rows, SLICE_ROWS)]
    parts = [value[start:start + SLICE_ROWS] for start in range(0, rows, SLICE_ROWS)]
    if tool in ("tfckpt", "tfckpt-nosync"):
        import tfckpt

        def write() -> None:
            with tfckpt.CheckpointWriter(path, sync=tool == "tfckpt") as writer:
                for spec, part in zip(specs, parts):
                    writer.add_slice(SLICED, None, spec, part)
        return write
    if tool == "tensorflow":
        import tensorflow as tf
        values = [tf.constant(part) for part in parts]
        names = [SLICED] * len(parts)
        return lambda: tf.raw_ops.SaveV2(prefix=path, tensor_names=names, shape_and_slices=specs, tensors=values)
    raise NotImplementedError("safetensors has no partitioned tensors")


def write_op(tool: str, tensors: dict[str, np.ndarray], path: str) -> Callable[[], None]:
    if SLICED in tensors:
        return write_sliced_op(tool, tensors[SLICED], path)
    if tool in ("tfckpt", "tfckpt-nosync"):
        import tfckpt
        return lambda: tfckpt.save(tensors, path, sync=tool == "tfckpt")  # fsync is tfckpt's default
    if tool == "tensorflow":
        import tensorflow as tf
        names = list(tensors)
        values = [tf.constant(v) for v in tensors.values()]  # made before timing: TF's own tensors
        return lambda: tf.raw_ops.SaveV2(prefix=path, tensor_names=names, shape_and_slices=[""] * len(names),
                                         tensors=values)
    if tool == "bare-write":  # the floor: the same bytes in one file, no format, no checksums
        def bare() -> None:
            with open(path, "wb") as out:
                out.writelines(value.data if value.flags.c_contiguous else value.tobytes() for value in tensors.values())
        return bare
    from safetensors.numpy import save_file
    return lambda: save_file(tensors, path)


def read_op(tool: str, path: str, what: str, name: str | None) -> Callable[[], Any]:
    if tool in ("tfckpt", "tfckpt-nosync"):
        import tfckpt
        if what == "all":
            return lambda: tfckpt.load(path)
        if what == "all_nocrc":
            return lambda: tfckpt.load(path, verify_checksums=False)
        if what == "all_serial":  # one thread, like the peers' loops
            return lambda: tfckpt.load(path, max_workers=1)
        if what == "all_mmap":  # zero-copy views; the CRC pass touches every page
            def mapped() -> dict[str, Any]:
                reader = tfckpt.load_checkpoint(path, mmap=True)
                return {n: reader[n] for n in reader}
            return mapped
        if what == "list":
            return lambda: tfckpt.load_checkpoint(path).get_variable_to_shape_map()
        if what == "slice":
            return lambda: tfckpt.load_checkpoint(path).get_slice(name)[1000:1256]
        return lambda: tfckpt.load_checkpoint(path)[name]
    if tool == "tensorflow":
        import tensorflow as tf
        if what in ("all", "all_serial", "all_mmap"):
            def read_all() -> dict[str, Any]:
                reader = tf.train.load_checkpoint(path)
                return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}
            return read_all
        if what == "list":
            return lambda: tf.train.load_checkpoint(path).get_variable_to_shape_map()
        if what == "slice":
            shape = tf.train.load_checkpoint(path).get_variable_to_shape_map()[name]
            spec = f"{shape[0]} {shape[1]} 1000,256:-"
            return lambda: tf.raw_ops.RestoreV2(prefix=path, tensor_names=[name], shape_and_slices=[spec],
                                                dtypes=[tf.float32])[0].numpy()
        return lambda: tf.train.load_checkpoint(path).get_tensor(name)
    from safetensors import safe_open
    from safetensors.numpy import load_file
    if what in ("all", "all_nocrc", "all_serial", "all_mmap"):
        return lambda: load_file(path)
    if what == "list":
        def listing() -> dict[str, Any]:
            with safe_open(path, framework="numpy") as f:
                return {k: f.get_slice(k).get_shape() for k in f.keys()}  # noqa: SIM118
        return listing
    if what == "slice":
        def sliced() -> Any:
            with safe_open(path, framework="numpy") as f:
                return f.get_slice(name)[1000:1256]
        return sliced
    def one() -> Any:
        with safe_open(path, framework="numpy") as f:
            return f.get_tensor(name)
    return one


def warm_page_cache(path: str) -> None:
    """Read the files once with plain reads, so timed reads are warm and allocate nothing here."""
    directory, base = os.path.split(path)
    buffer = bytearray(1 << 20)  # one small buffer: large reads would raise the RSS baseline
    for entry in os.listdir(directory):
        if entry.startswith(base):
            with open(os.path.join(directory, entry), "rb", buffering=0) as f:
                while f.readinto(buffer):
                    pass


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(args: argparse.Namespace) -> None:
    import tracemalloc
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    where = paths(args.dir, args.workload, tmpfs=args.operation == "write_tmpfs")[args.tool]
    times = []
    if args.operation.startswith("write"):
        tensors = make_tensors(args.workload, args.quick)
        op = write_op(args.tool, tensors, where)
        os.makedirs(os.path.dirname(where), exist_ok=True)
        baseline = rss_mib()
        for _ in range(args.repeat):
            start = time.perf_counter()
            op()
            times.append(time.perf_counter() - start)
        tracemalloc.start()  # one more, untimed: tracemalloc slows allocation-heavy code
        op()
    else:
        name = one_name(args.workload, args.quick) if args.operation in ("one", "slice") else None
        op = read_op(args.tool, where, args.operation, name)
        warm_page_cache(where)
        baseline = rss_mib()
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = op()
            times.append(time.perf_counter() - start)
            del result
        tracemalloc.start()  # one more, untimed: tracemalloc slows allocation-heavy code
        result = op()
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    if args.operation == "write_tmpfs":  # free the RAM tmpfs holds
        directory, base = os.path.split(where)
        for entry in os.listdir(directory):
            if entry.startswith(base):
                os.remove(os.path.join(directory, entry))
    print(json.dumps({"median": statistics.median(times), "times": times, "peak_extra_mib": rss_mib() - baseline,
                      "traced_mib": traced}))


# ---- asynchronous saves: how long the caller is blocked ------------------------------------

def run_async(directory: str, repeat: int, quick: bool) -> dict[str, Any]:
    """Blocked time of an asynchronous save of 512 MiB (64 float32 tensors) against a plain
    ``np.copyto`` of the same arrays into preallocated buffers, and TensorFlow's async
    checkpoint (``CheckpointOptions(experimental_enable_async_checkpoint=True)``) of the same
    values as CPU variables. Steady state: each figure is a median over repeated saves, each
    save waited for (untimed) before the next."""
    import tfckpt
    count, shape = (16, (256, 4096)) if quick else (64, (512, 4096))
    rng = np.random.default_rng(0)
    arrays = {f"layer_{i:02d}/kernel": rng.standard_normal(shape, dtype=np.float32) for i in range(count)}
    out: dict[str, Any] = {"bytes": sum(a.nbytes for a in arrays.values())}

    def median_of(step: Callable[[], Any], settle: Callable[[], Any] = lambda: None) -> float:
        times = []
        for _ in range(repeat + 1):  # the first one warms buffers (and TF's graph) up
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
            settle()
        return statistics.median(times[1:])

    buffers = {name: np.empty_like(a) for name, a in arrays.items()}
    out["copyto"] = median_of(lambda: [np.copyto(buffers[n], a) for n, a in arrays.items()])
    saver = tfckpt.Saver(arrays, max_to_keep=2)
    out["mutable"] = median_of(lambda: saver.save(os.path.join(directory, "async", "m"), asynchronous=True),
                               saver.wait)
    prefix = tfckpt.save(arrays, os.path.join(directory, "async", "src"), sync=False)
    mapped = tfckpt.load_checkpoint(prefix, mmap=True)
    views = {name: mapped[name] for name in mapped}
    immutable = tfckpt.Saver(views, max_to_keep=2)
    out["immutable"] = median_of(lambda: immutable.save(os.path.join(directory, "async", "i"), asynchronous=True),
                                 immutable.wait)
    done = subprocess.run([sys.executable, __file__, "--child", "--operation", "tf_async", "--dir", directory,
                           "--repeat", str(repeat)] + (["--quick"] if quick else []),
                          capture_output=True, text=True, check=False)
    out["tensorflow"] = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    return out


def tf_async_child(directory: str, repeat: int, quick: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    count, shape = (16, (256, 4096)) if quick else (64, (512, 4096))
    rng = np.random.default_rng(0)
    variables = [tf.Variable(rng.standard_normal(shape, dtype=np.float32)) for _ in range(count)]
    ckpt = tf.train.Checkpoint(v=variables)
    options = tf.train.CheckpointOptions(experimental_enable_async_checkpoint=True)
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        ckpt.write(os.path.join(directory, "async", "tf"), options=options)
        times.append(time.perf_counter() - start)
        ckpt.sync()
    print(json.dumps(statistics.median(times[1:])))


# ---- PyTorch: zero-copy loads beside safetensors ------------------------------------------

def anonymous_rss_mib() -> float:
    """Resident anonymous memory now (Linux): where a copy of the tensors would land."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pt_pairs_child(directory: str, repeat: int, quick: bool) -> None:
    import tracemalloc

    from safetensors.torch import load_file

    import tfckpt
    prefix, st_path = os.path.join(directory, "PT", "ckpt"), os.path.join(directory, "PT", "w.safetensors")
    warm_page_cache(prefix)
    warm_page_cache(st_path)
    ops: dict[str, Callable[[], Any]] = {
        "tfckpt_crc": lambda: tfckpt.load(prefix, framework="pt", mmap=True),
        "tfckpt_nocrc": lambda: tfckpt.load(prefix, framework="pt", mmap=True, verify_checksums=False),
        "safetensors": lambda: load_file(st_path)}
    for op in ops.values():  # imports, first-use caches
        op()
    times: dict[str, list[float]] = {name: [] for name in ops}
    names = list(ops)
    for i in range(repeat):
        for name in names if i % 2 == 0 else names[::-1]:  # alternate which tool goes first
            start = time.perf_counter()
            result = ops[name]()
            times[name].append(time.perf_counter() - start)
            del result
    out: dict[str, Any] = {"bytes": sum(a.nbytes for a in make_tensors("W1", quick).values()), "times": times}
    for name, op in ops.items():
        before = anonymous_rss_mib()
        tracemalloc.start()
        result = op()
        out[f"{name}_traced_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        out[f"{name}_anon_mib"] = anonymous_rss_mib() - before
        del result
    print(json.dumps(out))


def run_pt(directory: str, repeat: int, quick: bool) -> dict[str, Any] | None:
    from safetensors.numpy import save_file

    import tfckpt
    tensors = make_tensors("W1", quick)
    os.makedirs(os.path.join(directory, "PT"), exist_ok=True)
    tfckpt.save(tensors, os.path.join(directory, "PT", "ckpt"), sync=False)
    save_file(tensors, os.path.join(directory, "PT", "w.safetensors"))
    del tensors
    done = subprocess.run([sys.executable, __file__, "--child", "--operation", "pt_pairs", "--dir", directory,
                           "--repeat", str(repeat)] + (["--quick"] if quick else []),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"  PT failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    times = result["times"]
    result["median"] = {name: statistics.median(values) for name, values in times.items()}
    for name in ("tfckpt_crc", "tfckpt_nocrc"):  # per pair, then the median of the pairs' ratios
        result[f"{name}_ratio"] = statistics.median(a / b for a, b in zip(times[name], times["safetensors"]))
    return result


# ---- orchestration ------------------------------------------------------------------------

PLAN = {  # workload -> operations
    "W1": ["write", "write_tmpfs", "all", "all_serial", "all_nocrc", "all_mmap", "one"],
    "W2": ["write", "list", "one", "all", "all_serial"],
    "W3": ["write", "write_tmpfs", "all"],
    "W4": ["write", "slice"],
    "W5": ["write", "one"],
}


NOTES = {  # where the work on both sides is not the same
    "slice": "  (unequal: tfckpt reads 1 MiB without CRC; TF reads and verifies the whole tensor)",
    "all_mmap": "  (tfckpt: zero-copy views; peers: their ordinary read-all)",
    "all_nocrc": "  (no TF peer: it always verifies)",
}


def run_child(tool: str, workload: str, operation: str, args: argparse.Namespace, repeat: int) -> dict[str, Any] | None:
    if tool == "tfckpt-nosync" and not operation.startswith("write"):
        return None  # reads are the same as tfckpt's
    if operation == "all_nocrc" and tool == "tensorflow":
        return None  # TensorFlow always checks CRCs: not equal work (safetensors has none to check)
    if workload == "W5" and tool in ("safetensors", "bare-write"):
        return None  # no partitioned tensors there
    if tool == "bare-write" and not operation.startswith("write"):
        return None  # a write-side floor only
    command = [sys.executable, __file__, "--child", "--tool", tool, "--workload", workload, "--operation", operation,
               "--dir", args.dir, "--repeat", str(repeat)] + (["--quick"] if args.quick else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"  {tool} {workload} {operation} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def available(tool: str) -> bool:
    module = {"tfckpt": "tfckpt", "tfckpt-nosync": "tfckpt", "tensorflow": "tensorflow",
              "safetensors": "safetensors", "bare-write": "numpy"}[tool]
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, check=False).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,ASYNC,PT")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--out", help="also write the results as JSON here")
    parser.add_argument("--threads", type=int, help="tfckpt's thread count (TFCKPT_NUM_THREADS) for every child")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tool", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--operation", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is not None:  # children inherit it
        os.environ["TFCKPT_NUM_THREADS"] = str(args.threads)
    if args.child:
        if args.operation == "tf_async":
            tf_async_child(args.dir, args.repeat, args.quick)
        elif args.operation == "pt_pairs":
            pt_pairs_child(args.dir, args.repeat, args.quick)
        else:
            child(args)
        return
    scratch = args.dir is None
    args.dir = args.dir or tempfile.mkdtemp(prefix="tfckpt-bench-")
    tools = [t for t in TOOLS if available(t)]
    print(f"# {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; tools: {tools}")
    results: dict[str, Any] = {}
    for workload in args.workloads.split(","):
        if workload == "ASYNC":
            r = run_async(args.dir, args.repeat, args.quick)
            results["ASYNC"] = r
            tf_ms = f"{r['tensorflow'] * 1000:.1f} ms" if r["tensorflow"] is not None else "-"
            print(f"\nASYNC: blocked time of an asynchronous save of {r['bytes'] / 2**20:.0f} MiB")
            print(f"  mutable numpy arrays {r['mutable'] * 1000:.1f} ms; plain np.copyto {r['copyto'] * 1000:.1f} ms "
                  f"({r['mutable'] / r['copyto']:.2f}x); immutable (mmap=True views) {r['immutable'] * 1000:.1f} ms; "
                  f"TensorFlow async checkpoint of CPU variables {tf_ms}")
            continue
        if workload == "PT":
            pt = run_pt(args.dir, args.repeat, args.quick)
            results["PT"] = pt
            if pt is not None:
                m = pt["median"]
                print(f"\nPT: {pt['bytes'] / 2**20:.0f} MiB into torch tensors, {args.repeat} alternating pairs")
                for name in ("tfckpt_nocrc", "tfckpt_crc", "safetensors"):
                    ratio = f"; {pt[name + '_ratio']:.2f}x safetensors' time" if name != "safetensors" else ""
                    print(f"  {name:<13} {m[name] * 1000:8.1f} ms (median){ratio}; traced peak "
                          f"{pt[name + '_traced_mib']:.2f} MiB, anonymous memory +{pt[name + '_anon_mib']:.0f} MiB")
            continue
        if workload == "W6":
            w6 = run_w6(args.dir, args.repeat)
            results["W6"] = w6
            print(f"\nW6: {w6['bytes'] / 2**20:.1f} MiB in 400 tensors over HTTP (tfckpt only; peer = the floor)")
            for latency in W6_LATENCIES:
                r = w6[f"{int(latency * 1000)}ms"]
                print(f"  latency {latency * 1000:.0f} ms: load {r['load'] * 1000:.0f} ms in {r['requests']} requests; "
                      f"floor {r['floor'] * 1000:.0f} ms (ratio {r['load'] / r['floor']:.2f}x); a get_tensor loop: "
                      f"{r['get_tensor_loop'] * 1000:.0f} ms in {r['loop_requests']} requests")
            continue
        data_bytes = sum(v.nbytes for v in make_tensors(workload, args.quick).values())
        print(f"\n{workload}: {data_bytes / 2**20:.0f} MiB in {len(make_tensors(workload, args.quick))} tensors")
        print(f"  {'operation':<12} " + "".join(f"{t:>22}" for t in tools)
              + f"{'tfckpt/TF speed':>18}{'vs safetensors':>16}{'vs bare write':>15}")
        print(f"  {'':<12} " + "".join(f"{'ms, rss+/traced MiB':>22}" for _ in tools))
        for operation in PLAN[workload]:
            repeat = max(1, args.repeat // (3 if workload == "W3" else 1))
            row = {tool: run_child(tool, workload, operation, args, repeat) for tool in tools}
            results[f"{workload}/{operation}"] = {"data_bytes": data_bytes, **row}
            cells = []
            for tool in tools:
                r = row[tool]
                cells.append(f"{r['median'] * 1000:>9.1f} ms {r['peak_extra_mib']:>5.0f}/{r['traced_mib']:<5.0f}" if r
                             else f"{'-':>22}")
            ours = row.get("tfckpt-nosync") or row.get("tfckpt") if operation.startswith("write") else row.get("tfckpt")
            tf_, st = row.get("tensorflow"), row.get("safetensors")
            ratio_tf = f"{tf_['median'] / ours['median']:>17.2f}x" if ours and tf_ else f"{'-':>18}"
            ratio_st = f"{st['median'] / ours['median']:>15.2f}x" if ours and st else f"{'-':>16}"
            bare = row.get("bare-write")
            ratio_bare = f"{bare['median'] / ours['median']:>14.2f}x" if ours and bare else f"{'-':>15}"
            print(f"  {operation:<12} " + "".join(cells) + ratio_tf + ratio_st + ratio_bare + NOTES.get(operation, ""))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    if scratch:
        shutil.rmtree(args.dir, ignore_errors=True)  # up to ~15 GiB of checkpoints


if __name__ == "__main__":
    main()
