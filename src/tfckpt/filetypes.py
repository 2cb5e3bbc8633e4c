"""What a file is, told from its first bytes, for the files users give tfckpt by mistake; and
how deep brackets nest in a text (JSON, text protobuf) before a recursive parser sees it; and
JSON parsed with every parse failure turned into a CorruptionError.

Signatures recognised (``head`` is the file's first :data:`HEAD_BYTES` bytes)::

    safetensors   header_size: fixed64 little-endian, then "{" (the JSON header)
    zip           "PK\\x03\\x04" (or "PK\\x05\\x06", empty): .npz, a Keras .keras archive, torch.save
    HDF5          "\\x89HDF\\r\\n\\x1a\\n": Keras .h5 / .weights.h5
    npy           "\\x93NUMPY": one numpy array
    state file    text starting "model_checkpoint_path" or "all_model_checkpoint_paths"

A TensorFlow index has its magic number at its end, not its start: it is not recognised here,
and nothing here is consulted before a checkpoint fails to open, so a real checkpoint is never
taken for something else.
"""

from __future__ import annotations

import json
import struct
import zipfile
from typing import Any

import numpy as np

from . import storage
from .errors import CorruptionError

__all__ = ["HEAD_BYTES", "describe", "nesting_depth", "parse_json", "sniff_format"]

HEAD_BYTES = 64
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # HDF5 file format specification, "Format Signature"
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; end of central directory (empty zip)
NPY_MAGIC = b"\x93NUMPY"  # numpy.lib.format.MAGIC_PREFIX
STATE_FILE_FIELDS = (b"model_checkpoint_path", b"all_model_checkpoint_paths")  # checkpoint_state.proto


DEPTH_CHUNK = 1 << 16  # bytes scanned at a time: the scan itself needs about 1 MiB for any text


def nesting_depth(text: bytes, opens: bytes, closes: bytes) -> int:
    """The deepest nesting of the bracket bytes ``opens`` / ``closes`` in ``text`` (strings
    and comments already removed by the caller): a running count over the bytes, with numpy,
    in chunks; no recursion, linear time."""
    data = np.frombuffer(text, dtype=np.uint8)
    opening, closing = np.frombuffer(opens, dtype=np.uint8), np.frombuffer(closes, dtype=np.uint8)
    depth = deepest = 0
    for start in range(0, data.size, DEPTH_CHUNK):
        chunk = data[start:start + DEPTH_CHUNK]
        steps = np.isin(chunk, opening).astype(np.int32) - np.isin(chunk, closing).astype(np.int32)
        running = np.cumsum(steps, dtype=np.int64) + depth
        deepest = max(deepest, int(running.max()))
        depth = int(running[-1])
    return deepest


def parse_json(text: bytes, what: str) -> Any:
    """``text`` parsed as JSON; a :class:`CorruptionError` saying ``what`` (the file and part)
    is not JSON otherwise. Besides syntax errors that covers bad UTF-8 and an integer literal
    longer than Python converts (its int string limit raises a plain ValueError). Nesting depth
    is the caller's to bound first (:func:`nesting_depth`)."""
    try:
        return json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise CorruptionError(f"{what} is not JSON tfckpt can parse: {exc}") from exc


def _head(path: str, fs: storage.Filesystem) -> bytes:
    source = fs.open_source(path)
    try:
        return source.read_at(0, min(HEAD_BYTES, source.size()))
    finally:
        source.close()


def _is_safetensors(head: bytes) -> bool:
    return len(head) > 8 and struct.unpack_from("<Q", head)[0] > 0 and head[8:9] == b"{"


def _readable_head(path: str, remote: bool) -> bytes | None:
    """The first bytes of the regular file ``path``; ``None`` for what cannot be read (missing,
    directories) and, unless ``remote``, for URLs (no round trip is spent on the question)."""
    fs = storage.filesystem_for(path)
    if fs.is_remote and not remote:
        return None
    try:
        return _head(path, fs) if fs.isfile(path) else None
    except OSError:
        return None


def sniff_format(path: str, *, remote: bool = False) -> str | None:
    """``"safetensors"``, ``"npz"`` or ``"keras"`` (HDF5, a ``.keras`` archive) when the file's first bytes say so (whatever its name),
    else ``None``. Unreadable paths (missing, directories) are ``None`` too, and so are URLs
    unless ``remote``: a remote checkpoint is not made to pay a round trip for the question
    before it has failed as a checkpoint."""
    head = _readable_head(path, remote)
    if head is None:
        return None
    if _is_safetensors(head):
        return "safetensors"
    if head.startswith(HDF5_SIGNATURE):
        return "keras"
    if head.startswith(ZIP_SIGNATURES):
        kind = _zip_kind(path)  # once: on a URL, reading the archive's directory is requests
        return kind if kind in ("npz", "keras") else None
    return None


def _zip_kind(path: str) -> str:
    """``npz``, ``keras``, ``torch`` or ``zip``, from the archive's member names."""
    try:  # through storage: the archive may be remote (its directory is read, not its members)
        with storage.filesystem_for(path).open_file(path, "rb") as file, zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return "zip"
    if "metadata.json" in names and ("config.json" in names or "model.weights.h5" in names):
        return "keras"
    if any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
        return "torch"
    if all(name.endswith(".npy") for name in names):
        return "npz"
    return "zip"


_ZIP_KINDS = {
    "npz": "a numpy .npz archive: tfckpt ls, stats, diff and convert read it as it is "
           "(in Python: tfckpt.load)",
    "keras": "a Keras 3 .keras archive (a zip holding model.weights.h5), not a TensorFlow checkpoint: "
             "tfckpt ls, stats, diff and convert read its weights (pip install 'tfckpt[keras]'; in Python: "
             "tfckpt.formats.open_reader); tfckpt.keras.weights_h5_to_checkpoint makes a TF checkpoint of it",
    "torch": "a PyTorch checkpoint (torch.save), not a TensorFlow checkpoint: save its state_dict with "
             "safetensors, which tfckpt reads and converts",
    "zip": "a zip archive, not a TensorFlow checkpoint",
}


def describe(path: str, *, remote: bool = False) -> str | None:
    """What ``path`` is and what to do with it, when it is a file (local, or a URL if
    ``remote``) of a kind users give tfckpt in place of a checkpoint (``None`` when it is none
    of those)."""
    name = path.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
    head = _readable_head(path, remote)
    if head is None:
        return None
    if _is_safetensors(head):
        return ("a safetensors file: tfckpt ls, stats, diff and convert read it as it is "
                "(in Python: tfckpt.load)")
    if head.startswith(ZIP_SIGNATURES):
        return _ZIP_KINDS[_zip_kind(path)]
    if head.startswith(HDF5_SIGNATURE):
        return ("an HDF5 file (Keras 3 .weights.h5 or Keras 2 .h5 weights), not a TensorFlow checkpoint: "
                "tfckpt ls, stats, diff and convert read it (pip install 'tfckpt[keras]'; in Python: "
                "tfckpt.formats.open_reader); tfckpt.keras.weights_h5_to_checkpoint makes a TF checkpoint of it")
    if head.startswith(NPY_MAGIC):
        return "a single numpy .npy array, not a checkpoint: load it with numpy.load"
    if head.lstrip().startswith(STATE_FILE_FIELDS):
        return ("the 'checkpoint' state file, which names checkpoints but holds none: give its directory "
                "to open the latest checkpoint")
    if name.endswith(".meta"):
        return (f"a TF1 MetaGraph file (the graph Saver writes beside a checkpoint): show it with "
                f"`tfckpt meta show`; the checkpoint itself is {name[: -len('.meta')]!r}")
    if name == "saved_model.pb" or name == "saved_model.pbtxt":
        return "a SavedModel's graph: give the SavedModel directory to open its variables"
    return None
