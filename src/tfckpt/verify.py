"""Checking a whole checkpoint: every block, every tensor checksum, every structural rule.

Reading the index already checks each table block's CRC, the footer, the header and every
entry's shape. :func:`verify_checkpoint` then checks, per tensor, that its data file exists,
that its bytes lie inside it, that the size fits dtype x shape and that the CRC32C matches
(computed in chunks, so memory stays bounded); that partitioned tensors' slices exist, fit
and do not overlap; that nothing in a data file lies outside every tensor (the sign of an
index and data files from different saves); and that a TF2 object graph parses and names
only keys that exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .api import load_checkpoint
from .bundle.entry import TensorInfo
from .bundle.graph import OBJECT_GRAPH_KEY
from .bundle.naming import data_filename
from .bundle.reader import BundleReader, decode_key
from .bundle.slices import encode_slice_key
from .bundle.v1 import V1Reader
from .coding import crc32c, unmask
from .errors import NotFoundError, TfckptError
from .storage import PathLike

CHUNK_BYTES = 16 << 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a checkpoint."""

    message: str
    key: str | None = None
    file: str | None = None
    offset: int | None = None

    def __str__(self) -> str:
        where = ", ".join(part for part in (
            f"key {self.key!r}" if self.key is not None else "",
            f"file {self.file}" if self.file else "",
            f"offset {self.offset}" if self.offset is not None else "") if part)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class Report:
    """What :func:`verify_checkpoint` found; ``ok`` when ``problems`` is empty."""

    prefix: str
    tensors_checked: int = 0
    bytes_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_crc(reader: BundleReader, info: TensorInfo, report: Report) -> None:
    name = info.name
    path = data_filename(reader.prefix, info.shard_id, reader.header.num_shards)
    if info.dtype.is_fixed_size and info.size != info.num_elements * info.dtype.itemsize:
        report.problems.append(Problem(f"size {info.size} does not fit {info.dtype.name}{list(info.shape)} "
                                       f"({info.num_elements * info.dtype.itemsize} bytes)", name, path, info.offset))
        return
    try:
        source = reader._shard(info.shard_id)
    except NotFoundError as exc:
        report.problems.append(Problem(str(exc), name, path, info.offset))
        return
    if info.offset + info.size > source.size():
        report.problems.append(Problem(f"{info.size} bytes at offset {info.offset} run past the end of the "
                                       f"data file ({source.size()} bytes)", name, path, info.offset))
        return
    if info.dtype.name == "string":
        # A string tensor's stored CRC covers its lengths' checksum and bodies, not the raw bytes:
        # decoding it checks both (the raw pass below would read the bytes twice for nothing).
        try:
            reader._read_entry(info, info.shape)
        except TfckptError as exc:
            report.problems.append(Problem(str(exc), name, path, info.offset))
    elif info.dtype.is_fixed_size:
        crc = 0
        for start in range(info.offset, info.offset + info.size, CHUNK_BYTES):
            crc = crc32c(source.read_at(start, min(CHUNK_BYTES, info.offset + info.size - start)), crc)
        if crc != unmask(info.crc32c):
            report.problems.append(Problem(f"checksum mismatch: stored {unmask(info.crc32c):#010x}, computed "
                                           f"{crc:#010x}", name, path, info.offset))
    report.bytes_checked += info.size


def verify_checkpoint(path: PathLike) -> Report:
    """Check everything about the checkpoint at ``path``; never raises for damage found.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> prefix = tfckpt.save({"w": np.ones(4)}, os.path.join(tempfile.mkdtemp(), "m"))
    >>> verify_checkpoint(prefix).ok
    True
    """
    try:
        reader = load_checkpoint(path)
    except TfckptError as exc:
        return Report(str(path), problems=[Problem(f"cannot open: {exc}")])
    report = Report(reader.prefix)
    with reader:
        if isinstance(reader, V1Reader):
            for name in reader:
                try:
                    reader.get_tensor(name)
                except TfckptError as exc:
                    report.problems.append(Problem(str(exc), name))
                report.tensors_checked += 1
            return report
        extents: dict[int, list[tuple[int, int]]] = {}
        for _, info in reader.raw_entries():
            if info.slices:
                continue
            extents.setdefault(info.shard_id, []).append((info.offset, info.offset + info.size))
            if info.dtype.as_numpy_dtype is None:  # variant / resource: bytes only
                report.tensors_checked += 1
                continue
            _check_crc(reader, info, report)
            report.tensors_checked += 1
        stored = {info.name for _, info in reader.raw_entries()}
        for name in reader:
            if reader.tensor_info(name).slices:
                _check_slices(reader, name, stored, report)
        _check_coverage(reader, extents, report)
        _check_graph(reader, report)
    return report


def _check_slices(reader: BundleReader, name: str, stored: set[str], report: Report) -> None:
    info = reader.tensor_info(name)
    covered = 0
    for i, piece in enumerate(info.slices):
        for other in info.slices[i + 1:]:
            if piece.intersect(other, info.shape) is not None:
                report.problems.append(Problem(f"slices {piece} and {other} overlap", name))
        covered += math.prod(piece.shape(info.shape))
    if covered != info.num_elements:
        report.problems.append(Problem(f"slices cover {covered} of {info.num_elements} elements", name))
    for piece in info.slices:
        if decode_key(encode_slice_key(name, piece)) not in stored:
            report.problems.append(Problem(f"slice {piece} has no data entry", name))


def _check_coverage(reader: BundleReader, extents: dict[int, list[tuple[int, int]]], report: Report) -> None:
    for shard in range(reader.header.num_shards):
        path = data_filename(reader.prefix, shard, reader.header.num_shards)
        try:
            size = reader._shard(shard).size()
        except NotFoundError:
            if shard not in extents:
                report.problems.append(Problem("data file is missing", file=path))
            continue
        end = max((stop for _, stop in extents.get(shard, [])), default=0)
        if size > end:
            report.problems.append(Problem(
                f"{size - end} bytes after the last tensor (which ends at {end}): the index and this data "
                f"file look like they come from different saves", file=path, offset=end))


def _check_graph(reader: BundleReader, report: Report) -> None:
    if OBJECT_GRAPH_KEY not in reader:
        return
    try:
        graph = reader.object_graph
    except TfckptError as exc:
        report.problems.append(Problem(str(exc), OBJECT_GRAPH_KEY))
        return
    assert graph is not None
    named = {a.checkpoint_key for node in graph.nodes for a in node.attributes}
    for key in sorted(named):
        if key not in reader and not any(k.startswith(key) for k in reader):
            report.problems.append(Problem("the object graph names this key but the checkpoint lacks it", key))
