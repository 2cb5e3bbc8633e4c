"""Remote storage through fsspec: the memory filesystem and a real HTTP server on localhost."""

import re
import threading
import time
from collections.abc import Callable, Iterator
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


class Injected(OSError):
    pass


REMOTE_CASES = [  # (old shard count or None for a fresh prefix, new shard count, cut data files by size)
    (None, 1, False), (None, 3, False), (1, 1, False), (2, 2, False), (1, 3, False), (3, 1, False),
    (2, 2, True), (None, 2, True),
]


@pytest.mark.parametrize(("old_shards", "new_shards", "by_size"), REMOTE_CASES)
def test_a_remote_save_failing_at_any_step_leaves_the_old_or_the_new_checkpoint(
        monkeypatch: pytest.MonkeyPatch, old_shards: int | None, new_shards: int, by_size: bool) -> None:
    """Fail the k-th storage operation of a save (every k in turn): the prefix then holds the
    old checkpoint whole (or nothing, for a first save), never a mix; the next save tidies."""
    from tfckpt import storage
    fs = fsspec.filesystem("memory")

    def save(prefix: str, step: int, shards: int) -> None:
        tensors = {f"t{i}": np.full(1000, step, np.float64) for i in range(6)}
        if by_size:  # 8,000 bytes per tensor: files cut after every 6 // shards tensors
            with tfckpt.CheckpointWriter(prefix, max_shard_bytes=8000 * (6 // shards)) as writer:
                for name, value in tensors.items():
                    writer.add(name, value)
            assert tfckpt.load_checkpoint(prefix).header.num_shards == shards
        else:
            with tfckpt.CheckpointWriter(prefix) as writer:
                for i, (name, value) in enumerate(tensors.items()):
                    writer.add(name, value, shard=i % shards)

    def files(directory: str) -> list[str]:
        return sorted(Path(p).name for p in fs.ls(directory, detail=False)) if fs.exists(directory) else []

    base = f"/remote-steps-{old_shards}-{new_shards}-{by_size}"
    k = 0
    while True:
        directory = f"{base}/k{k}"
        prefix = f"memory://{directory}/ck"
        if old_shards is not None:
            save(prefix, 1, old_shards)
        calls = [0]

        def failing(real, calls=calls, k=k):  # type: ignore[no-untyped-def]
            def step(*args, **kwargs):  # type: ignore[no-untyped-def]
                calls[0] += 1
                if calls[0] == k + 1:
                    raise Injected(f"injected failure at storage step {k}")
                return real(*args, **kwargs)
            return step

        with monkeypatch.context() as patch:
            for name in ("copy", "move", "remove", "write_bytes", "read_bytes", "exists", "glob"):
                patch.setattr(storage.FsspecFilesystem, name, failing(getattr(storage.FsspecFilesystem, name)))
            for name in ("__init__", "write", "commit"):
                patch.setattr(storage.Upload, name, failing(getattr(storage.Upload, name)))
            try:
                save(prefix, 2, new_shards)
                raised = False
            except Injected:
                raised = True
        if calls[0] <= k:
            break  # k is past the last operation: every step has been failed once
        found = files(directory)
        assert not [n for n in found if "tempstate" in n], f"k={k}: temporaries left: {found}"
        if not raised:  # the failure hit the best-effort tidying after the commit
            assert {float(v[0]) for v in tfckpt.load(prefix).values()} == {2.0}
        elif old_shards is None:
            assert "ck.index" not in found, f"k={k}: a failed first save became visible"
        else:
            assert {float(x) for v in tfckpt.load(prefix).values() for x in v} == {1.0}, f"k={k}"
            assert tfckpt.verify_checkpoint(prefix).ok
        save(prefix, 3, new_shards)  # whatever happened, the next save publishes and tidies
        assert {float(x) for v in tfckpt.load(prefix).values() for x in v} == {3.0}
        assert files(directory) == sorted(["ck.index", *(f"ck.data-{s:05d}-of-{new_shards:05d}"
                                                        for s in range(new_shards))]), f"k={k}"
        k += 1
    fs.rm(base, recursive=True)
    assert k >= 6  # uploads, commits, re-pointing copies, moves and the index were all reached


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (a loaded machine may take a while), or give up."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def held_store(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[int]]:
    """memory:// files whose writes wait until the event is set: a store slower than any
    producer. Returns the event and the sizes of the writes the store has received."""
    from fsspec.implementations.memory import MemoryFile
    release, received = threading.Event(), []
    real_write = MemoryFile.write

    def held_write(self, data):  # type: ignore[no-untyped-def]
        received.append(len(data))
        release.wait(10)
        return real_write(self, data)

    monkeypatch.setattr(MemoryFile, "write", held_write)
    return release, received


def test_uploads_stream_from_a_helper_thread_with_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow store: the producer may run ahead by the queued parts only (memory stays bounded),
    and parts are sent while it is still writing; the file appears whole at commit."""
    from tfckpt import storage
    release, received = held_store(monkeypatch)
    upload = storage.Upload("memory://streaming/file", part_bytes=1024)
    produced = []

    def produce() -> None:
        for i in range(20):
            upload.write(bytes([i]) * 1024)
            produced.append(i)

    producer = threading.Thread(target=produce)
    producer.start()
    # The first part was handed over while the producer went on, up to the queue's bound.
    assert wait_for(lambda: received == [1024] and len(produced) == 1 + storage.UPLOAD_PARTS_QUEUED)
    producer.join(0.3)
    assert producer.is_alive() and len(produced) == 1 + storage.UPLOAD_PARTS_QUEUED  # and no further
    release.set()
    producer.join(10)
    upload.commit()
    data = fsspec.filesystem("memory").cat_file("/streaming/file")
    assert data == b"".join(bytes([i]) * 1024 for i in range(20))


def test_one_write_larger_than_a_part_is_cut_into_parts_and_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole large tensor handed over in one call is not copied whole: it goes in parts,
    and the call waits for the store like any other producer."""
    from tfckpt import storage
    release, received = held_store(monkeypatch)
    upload = storage.Upload("memory://streaming/large", part_bytes=1024)
    big = np.arange(20 * 256, dtype=np.float32).reshape(20, 256)  # 20 KiB, 2-d
    writer = threading.Thread(target=upload.write, args=(big,))
    writer.start()
    assert wait_for(lambda: received == [1024])
    writer.join(0.3)
    assert writer.is_alive() and received == [1024]  # waiting: 1 part in the store, 2 queued
    release.set()
    writer.join(10)
    upload.commit()
    assert set(received) == {1024} and len(received) == 20
    assert fsspec.filesystem("memory").cat_file("/streaming/large") == big.tobytes()


def test_a_failing_upload_raises_in_the_writer_and_shows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.implementations.memory import MemoryFile
    calls = []

    def broken_write(self, data):  # type: ignore[no-untyped-def]
        calls.append(len(data))
        raise ConnectionResetError("the store went away")

    monkeypatch.setattr(MemoryFile, "write", broken_write)
    with pytest.raises(ConnectionResetError, match="went away"), \
            tfckpt.CheckpointWriter("memory://broken-upload/ck") as writer:
        for i in range(40):
            writer.add(f"t{i}", np.zeros(1 << 20, np.uint8))  # 40 MiB: parts are sent on the way
    assert calls  # the failure happened in the helper thread and came back to the writer
    assert fsspec.filesystem("memory").find("/broken-upload") == []


def test_saving_to_a_read_only_filesystem_says_so(http_root: tuple[str, Path]) -> None:
    base, directory = http_root
    with pytest.raises(tfckpt.UnsupportedError, match="cannot write files"):
        tfckpt.save({"w": np.zeros(2)}, f"{base}/new/model")
    assert not list(directory.iterdir())


def test_a_remote_save_of_a_large_tensor_holds_a_few_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """256 MiB in one tensor, to a store that takes its time: the save's own allocations stay
    within a few 16 MiB parts (the store here only counts what it receives)."""
    import tracemalloc

    from fsspec.implementations.memory import MemoryFile
    received = []

    def counting_write(self, data):  # type: ignore[no-untyped-def]
        received.append(len(data))
        time.sleep(0.002)  # a store slower than the producer: the queue fills up
        return len(data)

    monkeypatch.setattr(MemoryFile, "write", counting_write)
    big = np.ones(256 << 20, np.uint8)
    tracemalloc.start()
    try:
        tfckpt.save({"big": big}, "memory://large-save/ck")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(received) == big.nbytes
    assert peak < 96 << 20, f"peak {peak / 2**20:.0f} MiB"
    fsspec.filesystem("memory").rm("/large-save", recursive=True)


def test_a_reader_opened_before_a_remote_overwrite_never_pairs_old_index_and_new_data() -> None:
    """The overwrite streams the new data to the name the old index used (after re-pointing
    the old checkpoint): a reader that parsed the old index hears of the replacement after
    reading, even with checksums off, instead of returning the new values as the old ones."""
    prefix = "memory://tfckpt-identity/ck"
    tfckpt.save({"a": np.full(100, 1.0), "b": np.full(50, 1.0)}, prefix)
    reader = tfckpt.load_checkpoint(prefix, verify_checksums=False)
    tfckpt.save({"a": np.full(100, 2.0), "b": np.full(50, 2.0)}, prefix)
    with pytest.raises(tfckpt.CheckpointReplacedError, match="replaced by a newer save"):
        reader["a"]
    reader.close()
    assert {k: float(v[0]) for k, v in tfckpt.load(prefix).items()} == {"a": 2.0, "b": 2.0}
    fsspec.filesystem("memory").rm("/tfckpt-identity", recursive=True)


def with_unusual_header(index_url: str) -> None:
    """Rewrite a remote index so that its header carries a field tfckpt does not know (a newer
    writer's): the header then cannot be patched in place, only rebuilt."""
    import io

    from tfckpt import storage
    from tfckpt.table import TableBuilder, TableReader
    original = storage.filesystem_for(index_url).read_bytes(index_url)
    assert original is not None
    items = list(TableReader(storage.BytesSource(index_url, original)))
    out = io.BytesIO()
    builder = TableBuilder(out)
    builder.add(b"", items[0][1] + b"\x78\x01")  # field 15, varint 1: unknown to the proto
    for key, value in items[1:]:
        builder.add(key, value)
    builder.finish()
    storage.filesystem_for(index_url).write_bytes(index_url, out.getvalue())


def test_a_failed_remote_overwrite_keeps_an_old_index_whose_header_cannot_be_patched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tfckpt import storage
    prefix = "memory://tfckpt-unusual/ck"
    tfckpt.save({"a": np.full(100, 1.0)}, prefix)
    with_unusual_header(prefix + ".index")
    assert float(tfckpt.load(prefix)["a"][0]) == 1.0

    def fail(self: object) -> None:
        raise Injected("the upload fails")

    monkeypatch.setattr(storage.Upload, "commit", fail)
    with pytest.raises(Injected):
        tfckpt.save({"a": np.full(100, 2.0)}, prefix)
    monkeypatch.undo()
    assert float(tfckpt.load(prefix)["a"][0]) == 1.0  # the old checkpoint, whole
    tfckpt.save({"a": np.full(100, 3.0)}, prefix)
    assert float(tfckpt.load(prefix)["a"][0]) == 3.0
    fsspec.filesystem("memory").rm("/tfckpt-unusual", recursive=True)


def test_mmap_on_a_url_says_it_cannot() -> None:
    """mmap=True is never ignored: a remote checkpoint (V2 or V1) cannot be mapped, and says so."""
    from conftest import FIXTURES
    tfckpt.save({"w": np.arange(3)}, "memory://mmap/out/model.ckpt")
    for path in ("memory://mmap/out/model.ckpt", "memory://mmap/out"):
        with pytest.raises(tfckpt.UnsupportedError, match="mmap=True maps local files only"):
            tfckpt.load_checkpoint(path, mmap=True)
        with pytest.raises(tfckpt.UnsupportedError, match="mmap=True maps local files only"):
            tfckpt.load(path, mmap=True)
    fsspec.filesystem("memory").pipe_file("/mmap/v1/model.ckpt-5", (FIXTURES / "v1_single" / "model.ckpt-5").read_bytes())
    with pytest.raises(tfckpt.UnsupportedError, match="mmap=True"):
        tfckpt.load_checkpoint("memory://mmap/v1/model.ckpt-5", mmap=True)
    assert tfckpt.load("memory://mmap/out")["w"].tolist() == [0, 1, 2]  # without mmap: read as usual
