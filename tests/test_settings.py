"""The thread count setting: its sources, and that every helper-thread pool honours it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfckpt
from tfckpt import settings, storage
from tfckpt.bundle import store, writer


@pytest.fixture(autouse=True)
def default_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(settings.ENV_NUM_THREADS, raising=False)
    yield
    tfckpt.set_num_threads(None)


def test_sources_of_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    assert tfckpt.get_num_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(settings.ENV_NUM_THREADS, "3")
    assert tfckpt.get_num_threads() == 3
    tfckpt.set_num_threads(5)
    assert tfckpt.get_num_threads() == 5
    tfckpt.set_num_threads(None)
    assert tfckpt.get_num_threads() == 3
    monkeypatch.setenv(settings.ENV_NUM_THREADS, "many")
    with pytest.raises(tfckpt.InvalidArgumentError, match="TFCKPT_NUM_THREADS='many'"):
        tfckpt.get_num_threads()
    for bad in (0, -1, 2.0, True):
        with pytest.raises(tfckpt.InvalidArgumentError, match="positive integer"):
            tfckpt.set_num_threads(bad)  # type: ignore[arg-type]


def read_threads(prefix: str, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The threads that ran the fetches of one load()."""
    seen: set[str] = set()
    original = store.BundleStore._execute_all

    def spy(self: Any, fetch: Any) -> Any:
        seen.add(threading.current_thread().name)
        time.sleep(0.02)  # long enough for the pool to start every thread it may
        return original(self, fetch)

    monkeypatch.setattr(store.BundleStore, "_execute_all", spy)
    monkeypatch.setattr(store, "PARALLEL_MIN_BYTES", 0)
    tfckpt.load(prefix)
    return seen


@pytest.mark.parametrize("count", [1, 2, 3])
def test_reads_use_at_most_the_set_number_of_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     count: int) -> None:
    prefix = tfckpt.save({f"t{i}": np.full(2 << 20, i, np.float32) for i in range(6)}, tmp_path / "m")
    tfckpt.set_num_threads(count)
    seen = read_threads(prefix, monkeypatch)
    if count == 1:
        assert seen == set()  # serial, on the caller's thread: no pool at all
    else:
        assert len(seen) == count and all(name.startswith("tfckpt-read") for name in seen)


@pytest.mark.parametrize("count", [1, 2])
def test_the_write_crc_helper_follows_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  count: int) -> None:
    seen: set[str] = set()
    original = writer.crc32c

    def spy(data: Any, start: int = 0) -> int:
        seen.add(threading.current_thread().name.split("_")[0])
        return original(data, start)

    monkeypatch.setattr(writer, "crc32c", spy)
    tfckpt.set_num_threads(count)
    tfckpt.save({"big": np.ones(4 << 20, np.float32).astype(">f4")}, tmp_path / "m", sync=False)
    assert seen == ({"MainThread"} if count == 1 else {"tfckpt-crc"})


@pytest.mark.parametrize("count", [1, 2])
def test_the_upload_sender_follows_the_setting(count: int) -> None:
    tfckpt.set_num_threads(count)
    upload = storage.Upload(f"memory://settings/upload-{count}.bin", part_bytes=4)
    senders = [t for t in threading.enumerate() if t.name == "tfckpt-upload"]
    upload.write(b"abcdefghij")
    upload.commit()
    assert storage.filesystem_for("memory://").read_bytes(f"memory://settings/upload-{count}.bin") == b"abcdefghij"
    assert len(senders) == (0 if count == 1 else 1)
