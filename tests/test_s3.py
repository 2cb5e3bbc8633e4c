"""Every remote feature against a real S3-protocol server (moto's standalone server on
localhost), reached through s3fs exactly as a user reaches AWS: ``s3://bucket/...`` URLs, the
endpoint and credentials from the environment."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import optional

import tfckpt
from tfckpt import distributed

optional("s3fs")
moto_server = optional("moto.server")


class Requests(logging.Handler):
    """The server's request log (werkzeug's), as "METHOD /path?query" lines."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage())  # werkzeug colours some lines
        if '"' in message:
            self.lines.append(message.split('"')[1].rsplit(" ", 1)[0])


@pytest.fixture(scope="module")
def server() -> Iterator[list[object]]:
    """``[the running server, its Requests log]``; a test that restarts the server puts the
    new one in the list."""
    instance = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    instance.start()
    host, port = instance.get_host_and_port()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                            "AWS_ENDPOINT_URL", "AWS_MAX_ATTEMPTS")}
    # AWS_MAX_ATTEMPTS: botocore's own retries (5, with backoff) under s3fs' retries made each
    # request of the outage test take tens of seconds while the server is down.
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_MAX_ATTEMPTS="2")
    import s3fs
    s3fs.S3FileSystem.clear_instance_cache()
    requests = Requests()
    log = logging.getLogger("werkzeug")
    log.addHandler(requests)
    level = log.level
    log.setLevel(logging.INFO)  # werkzeug logs each request at INFO
    holder: list[object] = [instance, requests]
    try:
        yield holder
    finally:
        log.removeHandler(requests)
        log.setLevel(level)
        holder[0].stop()  # type: ignore[attr-defined]
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def bucket(server: list[object], request: pytest.FixtureRequest) -> str:
    import fsspec
    name = "b-" + request.node.name.lower().replace("_", "-")[:50].strip("-")
    fs = fsspec.filesystem("s3")
    fs.mkdir(name)
    fs.invalidate_cache()
    return f"s3://{name}"


def s3():  # type: ignore[no-untyped-def]
    import fsspec
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    return fs


def test_save_load_and_ranged_reads(bucket: str, server: list[object]) -> None:
    rng = np.random.default_rng(0)
    tensors = {f"layer_{i:03d}/w": rng.standard_normal(int(rng.integers(1, 2000)), dtype=np.float32) for i in range(400)}
    tensors["vocab"] = np.array([b"a", b"", b"xyz"], dtype=object)
    prefix = tfckpt.save(tensors, f"{bucket}/run/model")
    requests = server[1]
    assert isinstance(requests, Requests)
    requests.lines.clear()
    loaded = tfckpt.load(prefix)
    for name, value in tensors.items():
        np.testing.assert_array_equal(loaded[name], value)
    gets = [line for line in requests.lines if line.startswith("GET /")]
    assert len(gets) == 2, requests.lines  # the index and one coalesced range: not 401 requests
    # Besides, two HEADs of the index: its identity (and size) before parsing it, and after
    # the data is read, to be sure no save replaced it meanwhile (README, "Guarantees").
    assert len(requests.lines) <= 4, requests.lines
    requests.lines.clear()
    one = tfckpt.load_variable(prefix, "layer_200/w")  # one tensor: its bytes only
    np.testing.assert_array_equal(one, tensors["layer_200/w"])
    assert 1 <= len([line for line in requests.lines if line.startswith("GET /")]) <= 3
    report = tfckpt.verify_checkpoint(prefix)
    assert report.ok and report.tensors_checked == 401


def test_saver_and_manager_retention_and_the_state_file(bucket: str) -> None:
    saver = tfckpt.Saver({"w": np.arange(3.0)}, max_to_keep=2)
    for step in range(4):
        saver.save(f"{bucket}/tf1/model.ckpt", global_step=step)
    names = sorted(p.rsplit("/", 1)[1] for p in s3().ls(f"{bucket}/tf1"))
    assert names == ["checkpoint", "model.ckpt-2.data-00000-of-00001", "model.ckpt-2.index",
                     "model.ckpt-3.data-00000-of-00001", "model.ckpt-3.index"]
    assert tfckpt.latest_checkpoint(f"{bucket}/tf1") == f"{bucket}/tf1/model.ckpt-3"
    ckpt = tfckpt.Checkpoint(model={"w": np.zeros(2)})
    manager = tfckpt.CheckpointManager(ckpt, f"{bucket}/tf2", max_to_keep=1)
    for _ in range(3):
        manager.save()
    assert manager.latest_checkpoint == f"{bucket}/tf2/ckpt-3"
    assert sorted(p.rsplit("/", 1)[1] for p in s3().ls(f"{bucket}/tf2")) == [
        "checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index"]
    restored = tfckpt.Checkpoint(model={"w": np.ones(2)})
    restored.restore(manager.latest_checkpoint).assert_consumed()


def test_overwriting_a_prefix_keeps_a_whole_checkpoint_readable_at_every_step(bucket: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"{bucket}/same/model"
    tfckpt.save({"w": np.arange(4.0), "v": np.arange(3)}, prefix)
    from tfckpt import storage
    seen: list[dict[str, list[float]]] = []

    def observe() -> None:  # what a reader finds at the prefix between two steps
        values = tfckpt.load(prefix)
        seen.append({k: v.tolist() for k, v in values.items()})

    def observing(real):  # type: ignore[no-untyped-def]
        def step(*args, **kwargs):  # type: ignore[no-untyped-def]
            observe()
            return real(*args, **kwargs)
        return step

    for name in ("copy", "move", "remove", "write_bytes"):
        monkeypatch.setattr(storage.FsspecFilesystem, name, observing(getattr(storage.FsspecFilesystem, name)))
    monkeypatch.setattr(storage.Upload, "commit", observing(storage.Upload.commit))
    monkeypatch.setattr(storage.Upload, "write", observing(storage.Upload.write))
    tfckpt.save({"w": np.arange(4.0) + 10, "v": np.arange(3) + 10}, prefix)
    monkeypatch.undo()
    old, new = {"w": [0.0, 1.0, 2.0, 3.0], "v": [0, 1, 2]}, {"w": [10.0, 11.0, 12.0, 13.0], "v": [10, 11, 12]}
    # Every observed state is one whole checkpoint, the old one until the index is committed;
    # the new one only at the tidying after it (deleting the re-pointed copies).
    assert len(seen) >= 6 and all(state in (old, new) for state in seen), seen
    first_new = seen.index(new) if new in seen else len(seen)
    assert first_new >= 5 and all(state == new for state in seen[first_new:]), seen
    assert {k: v.tolist() for k, v in tfckpt.load(prefix).items()} == new
    assert sorted(p.rsplit("/", 1)[1] for p in s3().ls(f"{bucket}/same")) == [
        "model.data-00000-of-00001", "model.index"]


def test_the_server_going_away_mid_upload_shows_nothing_new(bucket: str, monkeypatch: pytest.MonkeyPatch,
                                                          server: list[object]) -> None:
    """The server refuses connections after the data upload: the new step never becomes
    visible, the previous step and the state file stay as they were."""
    saver = tfckpt.Saver({"w": np.arange(3.0)}, max_to_keep=5)
    saver.save(f"{bucket}/run/model", global_step=1)
    from tfckpt import storage
    real_write = storage.FsspecFilesystem.write_bytes

    def write(fs: storage.FsspecFilesystem, url: str, data: bytes) -> None:
        if url.endswith(".index"):
            raise ConnectionError(f"connection refused: {url}")  # what botocore raises, abbreviated
        real_write(fs, url, data)

    monkeypatch.setattr(storage.FsspecFilesystem, "write_bytes", write)
    with pytest.raises(ConnectionError):
        saver.save(f"{bucket}/run/model", global_step=2)
    monkeypatch.undo()
    assert tfckpt.latest_checkpoint(f"{bucket}/run") == f"{bucket}/run/model-1"
    assert not s3().exists(f"{bucket}/run/model-2.index")
    assert tfckpt.load(f"{bucket}/run")["w"].tolist() == [0.0, 1.0, 2.0]


def test_a_real_outage_during_a_save(bucket: str, server: list[object]) -> None:
    """Stop the real server while a save is uploading; after it is back, the prefix holds the
    old checkpoint or the new one, whole, never a mix."""
    prefix = f"{bucket}/outage/model"
    old = {"w": np.zeros(1 << 20, np.float32)}
    new = {"w": np.ones(1 << 20, np.float32)}
    tfckpt.save(old, prefix)
    instance = server[0]
    port = instance.get_host_and_port()[1]  # type: ignore[attr-defined]
    stopper = threading.Timer(0.05, instance.stop)  # type: ignore[attr-defined]
    stopper.start()
    with contextlib.suppress(Exception):  # whatever the client raises when the server vanishes
        tfckpt.save(new, prefix)
    stopper.join()
    restarted = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    restarted.start()  # same process: moto's in-memory buckets survive
    server[0] = restarted
    value = tfckpt.load(prefix)["w"]
    assert value.tolist() in (old["w"].tolist(), new["w"].tolist())


def test_saves_stream_data_as_multipart_uploads_while_tensors_are_written(bucket: str, server: list[object],
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """No local staging: the data file goes up in parts while the writer still has tensors to
    add, straight to its final name (no server-side copy), the index last."""
    import tempfile
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: pytest.fail("a remote save staged files locally"))
    requests = server[1]
    assert isinstance(requests, Requests)
    requests.lines.clear()
    prefix = f"{bucket}/stream/model"
    part = 16 << 20
    rng = np.random.default_rng(1)
    first, second = rng.integers(0, 255, part + 1000, np.uint8), rng.integers(0, 255, part // 2, np.uint8)
    with tfckpt.CheckpointWriter(prefix) as writer:
        writer.add("first", first)
        for _ in range(200):  # the helper thread sends the first part while we wait here
            if any("partNumber=1" in line for line in requests.lines):
                break
            threading.Event().wait(0.05)
        part_sent_before_the_end = [line for line in requests.lines if "partNumber=" in line]
        writer.add("second", second)
    assert len(part_sent_before_the_end) == 1, requests.lines
    puts = [line for line in requests.lines if line.startswith(("PUT /", "POST /"))]
    assert [line.split("?")[0].rsplit("/", 1)[1] for line in puts] == [
        "model.data-00000-of-00001", "model.data-00000-of-00001", "model.data-00000-of-00001",
        "model.data-00000-of-00001", "model.index"], puts  # start, 2 parts, complete; index last
    assert not [line for line in requests.lines if "tempstate" in line]  # no temporary name, no copy
    loaded = tfckpt.load(prefix)
    assert np.array_equal(loaded["first"], first) and np.array_equal(loaded["second"], second)


def test_merge_on_object_storage_moves_data_server_side(bucket: str, server: list[object]) -> None:
    a = tfckpt.save({"a": np.arange(1000.0)}, f"{bucket}/parts/a")
    with tfckpt.CheckpointWriter(f"{bucket}/parts/b") as writer:
        writer.add("b", np.arange(7))
    requests = server[1]
    assert isinstance(requests, Requests)
    requests.lines.clear()
    merged = tfckpt.merge_checkpoints([a, f"{bucket}/parts/b"], f"{bucket}/merged/model")
    data_gets = [line for line in requests.lines if line.startswith("GET /") and "?" not in line and ".data-" in line]
    assert data_gets == [], requests.lines  # moved by server-side copies, never downloaded
    assert any(line.startswith("PUT /") and "/merged/model.data-" in line for line in requests.lines)
    loaded = tfckpt.load(merged)
    assert loaded["a"].tolist() == list(np.arange(1000.0)) and loaded["b"].tolist() == list(range(7))
    assert not s3().exists(f"{bucket}/parts/a.index")  # sources' indexes removed, as TF does


def test_distributed_parts_with_a_barrier(bucket: str) -> None:
    world = 3
    prefix = f"{bucket}/dist/model-5"
    calls = threading.Barrier(world)
    errors: list[BaseException] = []
    full = np.arange(12.0).reshape(6, 2)

    def rank(r: int) -> None:
        try:
            distributed.save({f"rank{r}": np.full(2, r)}, prefix, r, world, barrier=calls.wait)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    loaded = tfckpt.load(prefix)
    assert {k: v.tolist() for k, v in loaded.items()} == {f"rank{r}": [r, r] for r in range(world)}
    # Partitioned: each rank a slice of one variable, merged by polling.
    for r in range(world):
        with tfckpt.CheckpointWriter(distributed.part_prefix(f"{bucket}/dist/emb", r, world)) as writer:
            writer.add_slice("emb", full.shape, f"{2 * r},2:-", full[2 * r:2 * r + 2])
    distributed.merge_parts(f"{bucket}/dist/emb", world, timeout=30)
    np.testing.assert_array_equal(tfckpt.load_variable(f"{bucket}/dist/emb", "emb"), full)


def test_a_rank_that_dies_before_saving_is_named(bucket: str) -> None:
    prefix = f"{bucket}/dead/model"
    distributed.save_part({"x": np.arange(2)}, prefix, 0, 3)
    distributed.save_part({"z": np.arange(2)}, prefix, 2, 3)
    with pytest.raises(distributed.PartsTimeoutError, match=r"ranks \[1\]"):
        distributed.merge_parts(prefix, 3, timeout=0.5)
    with pytest.raises(distributed.PartsTimeoutError, match=r"ranks \[1\] do not exist after the barrier"):
        distributed.merge_parts(prefix, 3, barrier=lambda: None)
    assert not s3().exists(f"{prefix}.index")


def test_two_jobs_merging_into_one_prefix(bucket: str) -> None:
    prefix = f"{bucket}/twice/model"
    distributed.save_part({"x": np.arange(2)}, prefix, 0, 1)
    s3().pipe_file(f"{prefix}.merging".removeprefix("s3://"), b"other-host pid 7\n")  # job 1 is merging
    with pytest.raises(distributed.MergeConflictError, match="other-host pid 7"):
        distributed.merge_parts(prefix, 1, timeout=1)
    assert not s3().exists(f"{prefix}.index")
    s3().rm_file(f"{prefix}.merging".removeprefix("s3://"))
    distributed.merge_parts(prefix, 1, timeout=1)
    assert tfckpt.load(prefix)["x"].tolist() == [0, 1] and not s3().exists(f"{prefix}.merging".removeprefix("s3://"))


def test_v1_checkpoints_and_directories_on_s3(bucket: str) -> None:
    from conftest import FIXTURES
    s3().put_file(str(FIXTURES / "v1_single" / "model.ckpt-5"), f"{bucket}/v1/model.ckpt-5".removeprefix("s3://"))
    remote = tfckpt.load(f"{bucket}/v1/model.ckpt-5")
    local = tfckpt.load(FIXTURES / "v1_single" / "model.ckpt-5")
    assert sorted(remote) == sorted(local)
    tfckpt.save({"w": np.arange(2)}, f"{bucket}/lone/model.ckpt")
    assert tfckpt.load(f"{bucket}/lone")["w"].tolist() == [0, 1]


def test_local_merge_is_unchanged(tmp_path: Path) -> None:
    """Control: the same distributed calls on local disk."""
    prefix = str(tmp_path / "model")
    distributed.save({"w": np.arange(3)}, prefix, 0, 1, barrier=lambda: None)
    assert tfckpt.load(prefix)["w"].tolist() == [0, 1, 2] and not os.path.exists(prefix + "_temp")


@pytest.mark.tf
def test_torchrun_ranks_save_to_s3_and_tensorflow_restores_the_merge(bucket: str, tmp_path: Path,
                                                                    tf) -> None:  # type: ignore[no-untyped-def]
    """A real launcher: torchrun starts 3 processes (gloo), each saves its shard (whole
    tensors and slices of one partitioned embedding) to the S3 server, rank 0 merges behind
    torch.distributed.barrier; then TensorFlow reads the merged checkpoint (a local copy) and
    every value is exact."""
    import subprocess
    import sys

    optional("torch")
    from conftest import EXAMPLES
    sys.path.insert(0, str(EXAMPLES))
    try:
        import multihost_torchrun as example
    finally:
        sys.path.remove(str(EXAMPLES))
    world = 3
    prefix = f"{bucket}/torchrun/model-100"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(world),
         str(EXAMPLES / "multihost_torchrun.py"), prefix],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    reports = re.findall(r"rank \d+: \S+ has \d+ tensors", result.stdout)  # lines may interleave
    assert sorted(reports) == [f"rank {r}: {prefix} has {2 * world + 1} tensors" for r in range(world)], result.stdout
    local = tmp_path / "model-100"
    for path in s3().ls(f"{bucket}/torchrun".removeprefix("s3://")):
        name = path.rsplit("/", 1)[1]
        if name.startswith("model-100."):
            s3().get_file(path, str(tmp_path / name))
    reader = tf.train.load_checkpoint(str(local))
    embedding = [example.shard_of(r, world)[1] for r in range(world)]
    np.testing.assert_array_equal(reader.get_tensor("embedding"), np.concatenate(embedding))
    for r in range(world):
        own, _ = example.shard_of(r, world)
        for name, value in own.items():
            np.testing.assert_array_equal(reader.get_tensor(name), value)
    assert not [p for p in s3().ls(f"{bucket}/torchrun".removeprefix("s3://")) if p.endswith(".merging")]


def test_a_reader_opened_before_an_overwrite_hears_of_it_and_a_failed_overwrite_keeps_an_unusual_index(
        bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Identity on S3 is the index object's ETag/LastModified (one HEAD): a reader opened
    before an overwrite never returns the new data as the old. An old index whose header
    cannot be patched is rebuilt by the re-point, never deleted: a failed save keeps it."""
    from test_remote import Injected, with_unusual_header

    from tfckpt import storage
    prefix = f"{bucket}/ck"
    tfckpt.save({"a": np.full(100, 1.0)}, prefix)
    reader = tfckpt.load_checkpoint(prefix, verify_checksums=False)
    tfckpt.save({"a": np.full(100, 2.0)}, prefix)
    with pytest.raises(tfckpt.CheckpointReplacedError):
        reader["a"]
    reader.close()
    assert float(tfckpt.load(prefix)["a"][0]) == 2.0
    with_unusual_header(prefix + ".index")

    def fail(self: object) -> None:
        raise Injected("the upload fails")

    monkeypatch.setattr(storage.Upload, "commit", fail)
    with pytest.raises(Injected):
        tfckpt.save({"a": np.full(100, 3.0)}, prefix)
    monkeypatch.undo()
    assert float(tfckpt.load(prefix)["a"][0]) == 2.0
