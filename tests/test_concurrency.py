"""Concurrency as a tested model: the states a prefix passes through while it is overwritten,
with and without hard links, with readers opened before and during the overwrite, and two
writers at once (real processes, SIGKILLed at random moments).

Every tensor of a save holds one value (the save's step), so a reader that paired one save's
index with another's data cannot pass unnoticed, even with checksums off.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfckpt
from tfckpt.verify import verify_checkpoint


def tensors(step: int) -> dict[str, np.ndarray]:
    # The same sizes for every step: a mixed read is not caught by a size check.
    return {"a": np.full(500, float(step)), "b": np.full(700, float(step))}


def save(prefix: str, step: int, shards: int = 1) -> None:
    with tfckpt.CheckpointWriter(prefix, sync=False) as writer:
        for i, (name, value) in enumerate(tensors(step).items()):
            writer.add(name, value, shard=i % shards)


def no_links(*args: Any, **kwargs: Any) -> None:
    raise PermissionError(errno.EPERM, "Operation not permitted (no hard links here)")


def during_each_rename(monkeypatch: pytest.MonkeyPatch, observe: Callable[[str], None]) -> None:
    """Call ``observe(destination)`` right after every rename the publisher makes."""
    real = os.replace

    def replace(source: Any, destination: Any) -> None:
        real(source, destination)
        observe(os.fspath(destination))

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("verify", [True, False], ids=["checksums", "no-checksums"])
@pytest.mark.parametrize("shards", [1, 2])
def test_without_hard_links_a_reader_never_pairs_the_old_index_with_new_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verify: bool, shards: int) -> None:
    """A filesystem without hard links (exFAT, some FUSE/SMB mounts): a reader that parsed the
    old index and opens a data file at any moment of the overwrite reads the old values or
    hears that the checkpoint was replaced; never new data under the old index."""
    prefix = str(tmp_path / "ck")
    save(prefix, 1, shards)
    monkeypatch.setattr(os, "link", no_links)
    outcomes: list[object] = []

    def observe(destination: str) -> None:
        for name in ("a", "b"):
            reader = tfckpt.load_checkpoint(prefix, verify_checksums=verify)  # opened before this step...
            try:
                values = set(reader[name].tolist())  # ...its data file opened after it
                outcomes.append(values)
            except tfckpt.CheckpointReplacedError:
                outcomes.append("replaced")
            except tfckpt.TfckptError as exc:
                outcomes.append(exc)
            finally:
                reader.close()
        # Whatever the step, a fresh load finds one whole checkpoint.
        loaded = tfckpt.load(prefix)
        outcomes.append({float(x) for v in loaded.values() for x in np.unique(v)})

    during_each_rename(monkeypatch, observe)
    save(prefix, 2, shards)
    monkeypatch.undo()
    assert outcomes and all(o in ({1.0}, {2.0}, "replaced") for o in outcomes), outcomes
    assert {float(x) for v in tfckpt.load(prefix).values() for x in np.unique(v)} == {2.0}
    assert verify_checkpoint(prefix).ok


def test_readers_opened_before_an_overwrite_without_hard_links_read_old_values_or_hear_of_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers that parsed the old index before the save began, each reading (its data file
    opened then) after another step of it."""
    prefix = str(tmp_path / "ck")
    save(prefix, 1)
    monkeypatch.setattr(os, "link", no_links)
    waiting = [tfckpt.load_checkpoint(prefix, verify_checksums=False) for _ in range(6)]
    outcomes: list[object] = []

    def read(reader: tfckpt.CheckpointReader) -> None:
        try:
            outcomes.append(set(reader["a"].tolist()) | set(reader["b"].tolist()))
        except tfckpt.CheckpointReplacedError:
            outcomes.append("replaced")
        reader.close()

    during_each_rename(monkeypatch, lambda destination: read(waiting.pop()) if waiting else None)
    save(prefix, 2)
    monkeypatch.undo()
    while waiting:
        read(waiting.pop())
    assert len(outcomes) == 6 and all(o in ({1.0}, "replaced") for o in outcomes), outcomes


def test_without_hard_links_every_state_of_an_overwrite_is_a_whole_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No window at all: not even a crash between two renames loses the old checkpoint."""
    prefix = str(tmp_path / "ck")
    for step in (1, 2, 3):  # the shard count alternates between saves: both directions
        monkeypatch.setattr(os, "link", no_links)
        seen: list[float] = []

        def observe(destination: str, seen: list[float] = seen) -> None:
            report = verify_checkpoint(prefix)
            assert report.ok, report.problems
            seen.extend({float(x) for v in tfckpt.load(prefix, verify_checksums=False).values() for x in np.unique(v)})

        if step > 1:
            during_each_rename(monkeypatch, observe)
        save(prefix, step)
        monkeypatch.undo()
        assert set(seen) <= {step - 1.0, float(step)} and (step == 1 or step - 1.0 in seen), seen
        assert {float(x) for v in tfckpt.load(prefix).values() for x in np.unique(v)} == {float(step)}
        data = [p for p in os.listdir(tmp_path) if ".data-" in p]
        assert len(data) in (1, 2) and not [p for p in os.listdir(tmp_path) if "tempstate" in p], data


def test_a_checksum_error_caused_by_a_replacement_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that does not follow tfckpt's protocol (TensorFlow's own save renames the data
    file, then the index) can pair old index and new data for an instant: the CRC catches it,
    and since the index has changed meanwhile, load() re-opens instead of failing."""
    prefix = str(tmp_path / "ck")
    save(prefix, 1)
    other = str(tmp_path / "other" / "ck")
    save(other, 2)
    os.replace(other + ".data-00000-of-00001", prefix + ".data-00000-of-00001")  # step 1 of such a save
    from tfckpt import storage

    def reading(real: Callable[..., Any]) -> Callable[..., Any]:
        def read(self: storage.FileSource, *args: Any) -> Any:
            if ".data-" in self.name and os.path.exists(other + ".index"):
                os.replace(other + ".index", prefix + ".index")  # its step 2, as our data is read
            return real(self, *args)
        return read

    for method in ("read_at", "readinto_at", "mapping"):
        monkeypatch.setattr(storage.FileSource, method, reading(getattr(storage.FileSource, method)))
    loaded = tfckpt.load(prefix)
    assert {float(x) for v in loaded.values() for x in np.unique(v)} == {2.0}


def test_a_checksum_error_of_an_unreplaced_checkpoint_is_still_raised(tmp_path: Path) -> None:
    prefix = str(tmp_path / "ck")
    save(prefix, 1)
    data = Path(prefix + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[10] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(tfckpt.ChecksumError):
        tfckpt.load(prefix)
