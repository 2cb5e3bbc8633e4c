"""Round-3 audit findings on the file formats: each test rebuilds the hostile input it needs
(growth properties are swept by ``test_contracts.py`` through the families of
``contract_sweep.FAMILIES``; these tests check the error raised and its message)."""

from __future__ import annotations

from pathlib import Path

import hostile_builders as hb
import pytest

import tfckpt
from tfckpt.formats import open_reader


def test_npz_member_claiming_bytes_past_the_archive_is_refused_before_reading(tmp_path: Path) -> None:
    source = hb.npz_lying_sizes(tmp_path / "in", 10**6)
    with pytest.raises(tfckpt.CorruptionError, match=r"m\.npz: member 'a\.npy' claims 4000\d+ compressed "
                                                     r"bytes at offset \d+, past the end of the \d+-byte archive"):
        tfckpt.convert_checkpoint(source, str(tmp_path / "out.safetensors"))


HUGE_INTEGER = "9" * 5000  # past CPython's 4,300-digit int string conversion limit


def test_safetensors_header_with_a_huge_integer_literal_is_a_corruption_error(tmp_path: Path) -> None:
    text = b'{"t": {"dtype": "F32", "shape": [' + HUGE_INTEGER.encode() + b'], "data_offsets": [0, 0]}}'
    source = hb.safetensors_file(tmp_path / "m.safetensors", text)
    with pytest.raises(tfckpt.CorruptionError, match=r"m\.safetensors: header is not JSON .*4300"):
        tfckpt.convert_checkpoint(source, str(tmp_path / "out.npz"))
    with pytest.raises(tfckpt.CorruptionError, match=r"m\.safetensors: header is not JSON"):
        open_reader(source)  # what ls, stats and diff read a safetensors file through


def test_npz_dtypes_member_with_a_huge_integer_literal_is_a_corruption_error(tmp_path: Path) -> None:
    source = hb.npz_dtypes_text(tmp_path / "in", '{"a": ' + HUGE_INTEGER + "}")
    with pytest.raises(tfckpt.CorruptionError, match=r"m\.npz: member '__tfckpt_dtypes__' is not JSON .*4300"):
        tfckpt.convert_checkpoint(source, str(tmp_path / "out.safetensors"))
