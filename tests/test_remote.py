"""Remote storage through fsspec: the memory filesystem and a real HTTP server on localhost."""

import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from conftest import optional

import tfckpt

fsspec = optional("fsspec")  # the memory:// tests need nothing else; HTTP needs aiohttp too


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with HTTP Range support, counting the body bytes sent."""

    served = 0
    requests: ClassVar[list[str]] = []  # "GET bytes=0-99", "HEAD ", ...

    def log_message(self, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        RangeHandler.requests.append(f"{self.command} {self.headers.get('Range', '')}")
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return None
        data = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) + 1 if match.group(2) else len(data)
            body = data[start:end]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "GET":
            RangeHandler.served += len(body)
        import io
        return io.BytesIO(body if self.command == "GET" else b"")


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    optional("aiohttp")  # fsspec's HTTP filesystem
    handler = lambda *a, **k: RangeHandler(*a, directory=str(tmp_path), **k)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_http_reads_fetch_only_the_index_and_requested_ranges(http_root: tuple[str, Path]) -> None:
    url, root = http_root
    big = np.arange(1 << 20, dtype=np.float32)  # 4 MiB
    small = np.arange(10, dtype=np.int64)
    saver = tfckpt.Saver({"big": big, "small": small, "emb": np.arange(1000 * 16, dtype=np.float32).reshape(1000, 16)})
    saver.save(root / "model.ckpt", global_step=7)
    index_size = (root / "model.ckpt-7.index").stat().st_size
    RangeHandler.served = 0
    reader = tfckpt.load_checkpoint(f"{url}/model.ckpt-7")
    assert sorted(reader) == ["big", "emb", "small"]
    np.testing.assert_array_equal(reader["small"], small)
    np.testing.assert_array_equal(reader.get_slice("emb")[100:110], np.arange(1000 * 16, dtype=np.float32).reshape(1000, 16)[100:110])
    assert RangeHandler.served <= index_size + small.nbytes + 10 * 16 * 4 + 64  # nothing of "big"
    # Through the state file, as a directory URL.
    assert tfckpt.latest_checkpoint(url) == f"{url}/model.ckpt-7"
    np.testing.assert_array_equal(tfckpt.load_variable(url, "big"), big)


def test_http_missing_checkpoint_is_not_found(http_root: tuple[str, Path]) -> None:
    url, _ = http_root
    with pytest.raises(tfckpt.NotFoundError):
        tfckpt.load_checkpoint(f"{url}/nothing")


def test_memory_filesystem_save_restore_and_retention() -> None:
    base = "memory://tfckpt-tests/run"
    fs = fsspec.filesystem("memory")
    tensors = {"w": np.arange(6.0).reshape(2, 3), "s": [b"a", b"b"]}
    prefix = tfckpt.save(tensors, f"{base}/direct")
    loaded = tfckpt.load(prefix)
    np.testing.assert_array_equal(loaded["w"], tensors["w"])
    manager = tfckpt.CheckpointManager(tfckpt.Checkpoint(v=np.ones(3)), f"{base}/managed", max_to_keep=2)
    for _ in range(4):
        manager.save()
    names = sorted(Path(p).name for p in fs.ls("/tfckpt-tests/run/managed", detail=False))
    assert names == ["checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index", "ckpt-4.data-00000-of-00001", "ckpt-4.index"]
    target = np.zeros(3)
    tfckpt.Checkpoint(v=target).restore(f"{base}/managed").assert_consumed()
    assert target.tolist() == [1.0, 1.0, 1.0]
    with tfckpt.CheckpointWriter(f"{base}/sharded", max_shard_bytes=16) as writer:
        writer.add("a", np.zeros(2))
        writer.add("b", np.ones(2))
    assert tfckpt.load_checkpoint(f"{base}/sharded").header.num_shards == 2
    fs.rm("/tfckpt-tests", recursive=True)


def test_failed_remote_save_leaves_nothing_behind() -> None:
    base = "memory://tfckpt-fail"
    with pytest.raises(RuntimeError), tfckpt.CheckpointWriter(f"{base}/ck") as writer:
        writer.add("a", np.zeros(2))
        raise RuntimeError("boom")
    assert not fsspec.filesystem("memory").exists("/tfckpt-fail/ck.index")


def test_a_server_without_range_support_works_with_a_warning(tmp_path: Path) -> None:
    """`python -m http.server` answers ranged requests with the whole file (status 200)."""
    optional("aiohttp")
    prefix = tfckpt.save({"w": np.arange(10.0), "s": np.array([b"x"], dtype=object)}, tmp_path / "model.ckpt-1")
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = lambda *a, **k: Quiet(*a, directory=str(tmp_path), **k)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model.ckpt-1"
        with pytest.warns(RuntimeWarning, match="ignores HTTP Range requests"):
            assert tfckpt.load_variable(url, "s").tolist() == [b"x"]  # bytes 80-86 asked, all sent
        loaded = tfckpt.load(url)  # one range from offset 0: the whole file is the right answer
        assert loaded["w"].tolist() == list(np.arange(10.0)) and loaded["s"].tolist() == [b"x"]
    finally:
        server.shutdown()
        server.server_close()
    assert prefix


def test_urls_resolve_like_local_paths_including_v1_and_lone_checkpoints() -> None:
    from conftest import FIXTURES
    memory = fsspec.filesystem("memory")
    tfckpt.save({"w": np.arange(3)}, "memory://resolve/out/model.ckpt")
    assert tfckpt.resolve_prefix("memory://resolve/out/").endswith("resolve/out/model.ckpt")
    assert tfckpt.load("memory://resolve/out")["w"].tolist() == [0, 1, 2]
    memory.pipe_file("/resolve/v1/model.ckpt-5", (FIXTURES / "v1_single" / "model.ckpt-5").read_bytes())
    remote = tfckpt.load("memory://resolve/v1/model.ckpt-5")
    local = tfckpt.load(FIXTURES / "v1_single" / "model.ckpt-5")
    assert sorted(remote) == sorted(local) and all(remote[k].tolist() == local[k].tolist() for k in local)
    tfckpt.save({"w": np.arange(3)}, "memory://resolve/out/other.ckpt")
    with pytest.raises(tfckpt.NotFoundError, match="holds 2 checkpoints, name one: model.ckpt, other.ckpt"):
        tfckpt.load_checkpoint("memory://resolve/out")


def test_parts_save_and_merge_on_a_url() -> None:
    """Three ranks save parts to memory://, one of them slices of a shared variable; rank 0
    merges with the filesystem's own moves; the result reads whole and verifies."""
    full = np.arange(12.0).reshape(6, 2)
    prefix = "memory://merge-run/ck/model-100"
    for rank in range(3):
        part = tfckpt.distributed.part_prefix(prefix, rank, 3)
        with tfckpt.CheckpointWriter(part) as writer:
            writer.add(f"rank{rank}/w", np.full(4, rank, np.float32))
            writer.add_slice("shared", (6, 2), f"{2 * rank},2:-", full[2 * rank:2 * rank + 2])
    memory = fsspec.filesystem("memory")
    assert len(memory.glob("/merge-run/ck/model-100_temp/*.index")) == 3
    merged = tfckpt.distributed.merge_parts(prefix, 3, timeout=5)
    loaded = tfckpt.load(merged)
    assert sorted(loaded) == ["rank0/w", "rank1/w", "rank2/w", "shared"]
    assert loaded["shared"].tolist() == full.tolist() and loaded["rank2/w"].tolist() == [2.0] * 4
    assert tfckpt.verify_checkpoint(merged).ok
    assert not memory.glob("/merge-run/ck/model-100_temp/*.index")  # the parts' indexes are gone
    assert tfckpt.load_checkpoint(merged).header.num_shards == 3


def test_a_missing_rank_times_out_naming_it() -> None:
    tfckpt.distributed.save_part({"a": np.ones(1)}, "memory://merge-wait/ck", 0, 2)
    with pytest.raises(tfckpt.PartsTimeoutError, match=r"ranks \[1\]"):
        tfckpt.distributed.merge_parts("memory://merge-wait/ck", 2, timeout=0.2)


def test_loading_many_tensors_over_http_takes_a_few_requests(http_root: tuple[str, Path]) -> None:
    """400 tensors, 6 MiB: the index in one GET, the data in one coalesced ranged GET (the
    read plan), no HEAD requests; every value exact and checksum-verified."""
    url, root = http_root
    rng = np.random.default_rng(0)
    tensors = {f"layer_{i:03d}/w": rng.standard_normal(rng.integers(1, 8000), dtype=np.float32) for i in range(400)}
    tensors["names"] = np.array([b"a", b"bc"], dtype=object)
    tfckpt.save(tensors, root / "ck")
    data_size = (root / "ck.data-00000-of-00001").stat().st_size
    RangeHandler.requests = []
    loaded = tfckpt.load(f"{url}/ck")
    assert sorted(loaded) == sorted(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(loaded[name], value)
    from tfckpt.bundle import plan
    expected = 2 + -(-data_size // plan.REMOTE.limit)  # index + ceil(size / coalesce limit)
    assert len(RangeHandler.requests) <= expected, RangeHandler.requests
    assert not [r for r in RangeHandler.requests if r.startswith("HEAD")]


def test_remote_bulk_reads_still_verify_every_tensor(http_root: tuple[str, Path]) -> None:
    url, root = http_root
    tfckpt.save({"a": np.arange(100, dtype=np.int32), "b": np.arange(50, dtype=np.float64)}, root / "ck")
    data = root / "ck.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 1  # the last byte of "b"
    data.write_bytes(bytes(raw))
    with pytest.raises(tfckpt.ChecksumError, match="key 'b'.*checksum mismatch"):
        tfckpt.load(f"{url}/ck")
    data.write_bytes(bytes(raw[:-8]))  # truncated: the coalesced range comes back short
    with pytest.raises(tfckpt.CorruptionError, match="truncated"):
        tfckpt.load(f"{url}/ck")


def test_converting_a_remote_checkpoint_reads_it_in_bulk(http_root: tuple[str, Path], tmp_path: Path) -> None:
    """convert streams through the read planner: 300 tensors over HTTP in a few requests."""
    url, root = http_root
    tensors = {f"t{i:03d}": np.full(50, i, np.float32) for i in range(300)}
    tfckpt.save(tensors, root / "ck")
    RangeHandler.requests = []
    report = tfckpt.convert_checkpoint(f"{url}/ck", tmp_path / "out.npz")
    assert len(report.written) == 300
    assert len([r for r in RangeHandler.requests if r.startswith("GET")]) <= 3, RangeHandler.requests
    with np.load(tmp_path / "out.npz") as out:
        assert all(out[name].tolist() == value.tolist() for name, value in tensors.items())
