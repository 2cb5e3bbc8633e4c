"""Checkpoints written by other TensorFlow versions (tests/fixtures/make_other_versions.py):
tfckpt reads each tensor exactly as that version's own reader returned it, and verifies them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

import tfckpt

SETS = sorted(p.parent for p in (FIXTURES / "versions").rglob("expected.npz"))


def test_there_are_checkpoints_of_another_version() -> None:
    versions = {p.parent.name for p in SETS}
    assert versions and versions != {(FIXTURES / "VERSIONS.txt").read_text().split()[1]}


@pytest.mark.parametrize("directory", SETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_reads_what_that_tensorflow_read(directory: Path) -> None:
    reader = tfckpt.load_checkpoint(directory)
    with np.load(directory / "expected.npz") as expected:
        assert expected.files
        for stored in expected.files:
            name = stored.replace("|", "/")
            want, got = expected[stored], reader.read_array(name)
            assert got.dtype == want.dtype or want.dtype.kind == "V", name  # bfloat16 comes back as void
            assert got.shape == want.shape and got.tobytes() == want.tobytes(), name
    assert tfckpt.verify_checkpoint(directory).ok


@pytest.mark.parametrize("directory", [p for p in SETS if p.name == "keras2_adam"], ids=lambda p: p.parent.name)
def test_keras2_legacy_adam_slots_belong_to_their_variables(directory: Path) -> None:
    reader = tfckpt.load_checkpoint(directory)
    slots = {(s.slot_name, "/".join(s.variable_path)) for s in reader.slot_variables()}
    kernels = [p for p in reader.object_paths().values() if p.endswith("kernel")]
    assert kernels and all(("m", k) in slots and ("v", k) in slots for k in kernels), (slots, kernels)
    nested = reader.nested(optimizer=False, save_counter=False)
    assert set(nested) == {"model"}
