"""Round-3 audit findings on the file formats: each test rebuilds the hostile input it needs
(growth properties are swept by ``test_contracts.py`` through the families of
``contract_sweep.FAMILIES``; these tests check the error raised and its message)."""

from __future__ import annotations

from pathlib import Path

import hostile_builders as hb
import pytest

import tfckpt


def test_npz_member_claiming_bytes_past_the_archive_is_refused_before_reading(tmp_path: Path) -> None:
    source = hb.npz_lying_sizes(tmp_path / "in", 10**6)
    with pytest.raises(tfckpt.CorruptionError, match=r"m\.npz: member 'a\.npy' claims 4000\d+ compressed "
                                                     r"bytes at offset \d+, past the end of the \d+-byte archive"):
        tfckpt.convert_checkpoint(source, str(tmp_path / "out.safetensors"))
