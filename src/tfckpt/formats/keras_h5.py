"""Keras weights in HDF5 as a convert source: Keras 3's ``.weights.h5``, the ``model.weights.h5``
inside a ``.keras`` archive, and any other HDF5 file of numeric datasets (a Keras 2 ``.h5``).
Needs h5py (``pip install tfckpt[keras]``).

Keras 3 writes one group per object that owns state, at the object's attribute path, and the
object's variables as datasets ``0``, ``1``, ... of a ``vars`` group carrying the object's Keras
``name`` as an attribute::

    vars                            attrs {name: "sequential"}   the model's own variables
    layers/dense/vars/0             float32 [4, 3]               Sequential/Functional layers,
    layers/dense/vars/1             float32 [3]                  named by class, numbered per class
    layers/lstm/cell/vars/0..2                                   a layer inside a layer
    block/conv/vars/0                                            a subclassed model's attributes
    extra/dense_1/vars/0                                         the 2nd Dense of the list ``extra``
    optimizer/vars/0..N             iterations, learning rate, then the slots in variable order

Tensor names are the datasets' paths, so a file converted elsewhere and back keeps Keras's
layout. HDF5 keeps no creation order unless asked to, but a fresh file lays objects out in the
order they were written: :func:`read_layout` reports that order (by object header address),
which is the order Keras walked the model.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import storage
from ..bundle.publish import publish_stream
from ..dtypes import DType, as_dtype
from ..errors import CorruptionError, InvalidArgumentError, TfckptError, UnsupportedError
from ..storage import PathLike
from . import SourceTensor, check_numpy_shape

__all__ = ["KERAS_ARCHIVE_WEIGHTS", "MAX_FILTER_RATIO", "H5Layout", "read_layout", "source", "write_like"]

KERAS_ARCHIVE_WEIGHTS = "model.weights.h5"  # keras saving_lib: the weights member of a .keras zip
MAX_FILTER_RATIO = 1032  # deflate's most expansion (zlib): a dataset claiming more is refused
MAX_GROUP_DEPTH = 64  # Keras nests a few groups per sub-model (layers/NAME/vars); deeper is refused
_H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, zipfile.BadZipFile)


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise UnsupportedError("reading Keras .weights.h5 / .keras files needs h5py: "
                               "pip install 'tfckpt[keras]'") from None
    return h5py


def open_h5(path: PathLike, stack: ExitStack) -> Any:
    """The HDF5 file at ``path`` (a ``.keras`` archive: its ``model.weights.h5``), read-only,
    closed with ``stack``."""
    h5py = _h5py()
    where = os.fspath(path)
    fs = storage.filesystem_for(where)
    if fs.is_remote:  # h5py reads local files
        raise fs.unsupported("reading Keras HDF5 files", where, "copy it to a local path first")
    try:
        if zipfile.is_zipfile(where):
            archive = stack.enter_context(zipfile.ZipFile(where))
            if KERAS_ARCHIVE_WEIGHTS not in archive.namelist():
                raise CorruptionError(f"{where}: a zip archive without {KERAS_ARCHIVE_WEIGHTS}, so not a Keras "
                                      f".keras file (members: {archive.namelist()[:10]})")
            member = stack.enter_context(archive.open(KERAS_ARCHIVE_WEIGHTS))
            if archive.getinfo(KERAS_ARCHIVE_WEIGHTS).compress_type != zipfile.ZIP_STORED:
                # A compressed member seeks backwards by decompressing again from its start, and
                # h5py seeks back for every object header: quadratic. Decompress it once, to disk.
                copy = stack.enter_context(storage.spool_file())
                while chunk := member.read(1 << 20):
                    copy.write(chunk)
                copy.seek(0)
                member = copy
            return stack.enter_context(h5py.File(member, "r"))  # a stored member is read in place
        return stack.enter_context(h5py.File(where, "r"))
    except TfckptError:
        raise
    except _H5_ERRORS as exc:
        raise CorruptionError(f"{where}: not a readable HDF5 file: {exc}") from exc


def _dtype(dataset: Any, where: str) -> DType:
    raw = dataset.dtype
    if raw.kind not in "biuf" or raw.fields is not None:
        raise UnsupportedError(f"{where}: {raw} values (HDF5 strings, compounds, references) are not tensors "
                               f"tfckpt reads")
    try:
        return as_dtype(raw.newbyteorder("=") if raw.byteorder not in "=|" else raw)
    except TfckptError as exc:
        raise UnsupportedError(f"{where}: {exc}") from None


def _check_storage(dataset: Any, nbytes: int, where: str) -> None:
    """Refuse a dataset whose stored bytes could not hold its declared size (HDF5 lets a small
    file declare a huge dataset that reads as fill values): no read allocates beyond the file.
    Data outside the file (HDF5 external storage, virtual datasets) is refused: it would read
    any local file (``/dev/zero`` without end) for a few bytes of input."""
    if dataset.id.get_create_plist().get_external_count() or dataset.is_virtual:
        raise UnsupportedError(f"{where}: its data is stored outside the file (HDF5 external storage or a "
                               f"virtual dataset), which tfckpt does not read")
    stored = int(dataset.id.get_storage_size())
    most = stored if dataset.compression is None and not dataset.chunks else stored * MAX_FILTER_RATIO
    if nbytes > most:
        raise CorruptionError(f"{where}: declares {nbytes} bytes but the file stores {stored} bytes for it")


@dataclass
class H5Layout:
    """What an HDF5 weights file holds, without its values: datasets (dtype, shape) and groups
    in the order they were written, and each group's ``name`` attribute (Keras's object name)."""

    datasets: dict[str, tuple[DType, tuple[int, ...]]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # every group and dataset, as written
    names: dict[str, str] = field(default_factory=dict)


def _walk(file: Any, visit: Callable[[str, Any], None], where: str) -> None:
    """``visit(path, object)`` for each group and dataset under ``file`` in the order of h5py's
    ``visititems`` (depth first, names in order), each object once (hard links may make
    cycles), soft and external links not followed. Not ``visititems`` itself: HDF5 resolves each
    visited object from the root by its full path, quadratic in the nesting (a 1 MB file of
    1000 nested groups took 3 s of CPU). Groups deeper than :data:`MAX_GROUP_DEPTH` are refused."""
    h5py = _h5py()
    seen = {h5py.h5o.get_info(file.id).addr}

    def children(prefix: str, group: Any, depth: int) -> list[tuple[str, Any, int]]:
        found = []
        for name in group:
            if isinstance(group.get(name, getlink=True), h5py.HardLink):
                found.append((prefix + name, group[name], depth))
        return found[::-1]  # popped from the end: first name first

    stack = children("", file, 1)
    while stack:
        path, obj, depth = stack.pop()
        address = h5py.h5o.get_info(obj.id).addr
        if address in seen:
            continue
        seen.add(address)
        if isinstance(obj, h5py.Group) and depth > MAX_GROUP_DEPTH:
            raise UnsupportedError(f"{where}: group {path[:60]!r}... nests {depth} deep, more than the "
                                   f"{MAX_GROUP_DEPTH} levels tfckpt reads")
        visit(path, obj)
        if isinstance(obj, h5py.Group):
            stack.extend(children(path + "/", obj, depth + 1))


def _layout(file: Any, where: str) -> H5Layout:
    h5py = _h5py()
    found: list[tuple[int, str]] = []
    layout = H5Layout()

    def visit(name: str, obj: Any) -> None:
        what = f"{where}: {name!r}"
        found.append((h5py.h5o.get_info(obj.id).addr, name))
        if isinstance(obj, h5py.Dataset):
            dtype, shape = _dtype(obj, what), tuple(int(d) for d in obj.shape or ())
            if obj.shape is None:
                raise UnsupportedError(f"{what}: an HDF5 null dataspace holds no tensor")
            check_numpy_shape(shape, dtype, what)
            _check_storage(obj, int(np.prod(shape, dtype=object)) * dtype.itemsize, what)
            layout.datasets[name] = (dtype, shape)
        else:
            value = obj.attrs.get("name")
            if isinstance(value, (str, bytes)):
                layout.names[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value

    try:
        _walk(file, visit, where)
    except TfckptError:
        raise
    except _H5_ERRORS as exc:
        raise CorruptionError(f"{where}: unreadable HDF5 structure: {exc}") from exc
    layout.order = [name for _, name in sorted(found)]
    return layout


def read_layout(path: PathLike) -> H5Layout:
    """The :class:`H5Layout` of the HDF5 weights at ``path`` (or inside a ``.keras`` archive)."""
    with ExitStack() as stack:
        return _layout(open_h5(path, stack), os.fspath(path))


def source(path: PathLike, stack: ExitStack) -> list[SourceTensor]:
    """Every numeric dataset of the file, named by its HDF5 path; values read when asked for.
    ``optimizer/...`` datasets are optimizer state."""
    where = os.fspath(path)
    file = open_h5(path, stack)
    layout = _layout(file, where)

    out = []
    for name, (dtype, shape) in layout.datasets.items():
        def read(name: str = name, dtype: DType = dtype) -> np.ndarray:
            try:
                value = np.asarray(file[name][()])
            except _H5_ERRORS as exc:
                raise CorruptionError(f"{where}: dataset {name!r}: {exc}") from exc
            assert dtype.as_numpy_dtype is not None
            return value.astype(dtype.as_numpy_dtype, copy=False)

        out.append(SourceTensor(name, dtype, shape, read, optimizer_state=name.startswith("optimizer/")))
    return out


def write_like(template: PathLike, path: PathLike, values: Mapping[str, np.ndarray]) -> None:
    """Write the HDF5 file ``path``: the groups, ``name`` attributes and datasets of
    ``template``, created in the template's order, each dataset holding ``values[name]`` (cast
    to the template's dtype) or, when absent, the template's own value. Published whole
    (temporary name, then rename) or not at all."""
    h5py = _h5py()
    where = os.fspath(path)
    fs = storage.filesystem_for(where)
    if fs.is_remote:  # h5py writes local files
        raise fs.unsupported("writing .weights.h5 files", where, "write to a local path and copy it")
    with ExitStack() as stack:
        source_file = open_h5(template, stack)
        layout = _layout(source_file, os.fspath(template))
        unknown = sorted(set(values) - set(layout.datasets))
        if unknown:
            raise InvalidArgumentError(f"{where}: no dataset of the template {os.fspath(template)} is named "
                                       f"{', '.join(map(repr, unknown[:10]))}")
        staged = publish_stream(where, fs)
        try:
            staged.file.close()
            with h5py.File(staged.temp, "w") as out:
                for name in layout.order:
                    if name not in layout.datasets:
                        group = out.require_group(name)
                        if name in layout.names:
                            group.attrs["name"] = layout.names[name]
                        continue
                    dtype, shape = layout.datasets[name]
                    value = values[name] if name in values else source_file[name][()]
                    out.create_dataset(name, data=np.asarray(value).astype(dtype.as_numpy_dtype).reshape(shape))
            staged.publish()
        except BaseException:
            staged.discard()
            raise
