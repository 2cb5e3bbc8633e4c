"""Tensor bytes in a data file, and their checksums.

Fixed-size dtypes: the elements in row-major order, each in the byte order the header names
(little-endian unless the bundle says BIG); ``size = num_elements * itemsize``; the entry's
``crc32c = mask(crc32c(payload))``. Zero elements: no bytes, crc ``mask(0)``.

DT_STRING, for N elements in row-major order::

    length: varint64 * N
    length_crc: fixed32 = mask(L), L = crc32c over each length as a fixed-width integer
                (uint32, or uint64 for lengths > 0xFFFFFFFF) in the bundle's byte order
    body: bytes * N (concatenated, no separators)

and the entry's crc32c is ``mask(crc)`` with ``crc`` = L extended by the 4 stored length_crc
bytes, then by every body in order.

DT_VARIANT (serialized ``VariantTensorDataProto`` per element) is listed but not decoded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np

from ..coding import (
    FIXED32,
    MAX_VARINT64_BYTES,
    crc32c,
    decode_varint,
    encode_varint,
    mask,
    unmask,
)
from ..dtypes import DType
from ..errors import ChecksumError, CorruptionError, UnsupportedError
from ..storage import ByteSource
from . import validate

__all__ = [
    "CHECK_CHUNK_BYTES",
    "SPAN_READ_FACTOR",
    "SPAN_READ_SMALL",
    "WRITE_CHUNK_BYTES",
    "byte_view",
    "check_crc",
    "check_strings",
    "cut_fixed",
    "decode_strings",
    "encode_strings",
    "iter_chunks",
    "read_fixed",
    "read_fixed_region",
    "read_strings",
    "swap_to_little_endian",
]

# Non-contiguous or byte-swapped arrays are written through chunks of this size, so a save
# never holds a second full copy of a large tensor.
WRITE_CHUNK_BYTES = 16 << 20
_U32_MAX = 0xFFFFFFFF


def byte_view(array: np.ndarray[Any, Any]) -> memoryview:
    """A flat, writable-if-possible byte view of a C-contiguous array (no copy)."""
    return array.reshape(-1).view(np.uint8).data


def iter_chunks(array: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> Iterator[memoryview]:
    """The array's bytes in row-major order as ``dtype`` (little-endian storage), in chunks.

    Zero-copy for a C-contiguous array already of ``dtype``; otherwise converts at most
    ``WRITE_CHUNK_BYTES`` at a time.
    """
    if array.size == 0:
        return
    if array.dtype == dtype and array.flags.c_contiguous:
        yield byte_view(array)
        return
    flat = array.reshape(-1) if array.flags.c_contiguous else None
    if flat is None and array.ndim > 1:
        # Convert whole rows of the leading axis so each chunk stays row-major contiguous.
        row_bytes = max(1, array[0].size * dtype.itemsize)
        rows = max(1, WRITE_CHUNK_BYTES // row_bytes)
        for start in range(0, array.shape[0], rows):
            yield from iter_chunks(np.ascontiguousarray(array[start:start + rows]), dtype)
        return
    flat = array.reshape(-1)  # 1-d views are cheap even when strided
    step = max(1, WRITE_CHUNK_BYTES // max(1, dtype.itemsize))
    for start in range(0, flat.size, step):
        yield byte_view(np.ascontiguousarray(flat[start:start + step], dtype=dtype))


def _length_width_dtype(big_endian: bool) -> tuple[str, str]:
    return (">u4", ">u8") if big_endian else ("<u4", "<u8")


def _lengths_crc(lengths: Sequence[int], big_endian: bool = False) -> int:
    u4, u8 = _length_width_dtype(big_endian)
    if all(n <= _U32_MAX for n in lengths):
        return crc32c(np.asarray(lengths, dtype=u4).tobytes())
    crc = 0
    for n in lengths:
        crc = crc32c(np.array(n, dtype=u4 if n <= _U32_MAX else u8).tobytes(), crc)
    return crc


def encode_strings(values: Sequence[bytes]) -> tuple[list[bytes], int, int]:
    """``(parts, size, masked entry crc)`` of a DT_STRING payload (little-endian bundle)."""
    lengths = [len(v) for v in values]
    varints = b"".join(encode_varint(n) for n in lengths)
    length_crc = _lengths_crc(lengths)
    stored = FIXED32.pack(mask(length_crc))
    crc = crc32c(stored, length_crc)
    for body in values:
        crc = crc32c(body, crc)
    parts = [varints, stored, *values]
    return parts, len(varints) + len(stored) + sum(lengths), mask(crc)


def _check_string_size(size: int, count: int, where: str | Callable[[], str]) -> None:
    problem = validate.string_size_problem(size, count)
    if problem is not None:
        raise CorruptionError(f"{_text(where)}: {problem}")


def read_strings(source: ByteSource, offset: int, size: int, count: int, big_endian: bool,
                 verify: bool, stored_crc: int, where: str) -> np.ndarray[Any, Any]:
    """Read and decode a DT_STRING payload of ``count`` elements into a flat object array."""
    if size == 0 and count == 0:
        return np.empty(0, dtype=object)
    _check_string_size(size, count, where)  # before reading (and allocating) anything
    return decode_strings(source.read_at(offset, size), offset, count, big_endian, verify, stored_crc, where)


def decode_strings(buf: bytes, offset: int, count: int, big_endian: bool, verify: bool, stored_crc: int,
                   where: str | Callable[[], str]) -> np.ndarray[Any, Any]:
    """Decode the DT_STRING payload ``buf`` (stored at file ``offset``) into a flat object
    array of ``count`` bytes objects. ``where`` (or what it returns) starts error messages.

    Memory: the result is one Python bytes object and one 8-byte slot per element (empty and
    one-byte strings share CPython's cached objects); decoding adds one more slot per element
    and ``buf``, so at most ``2 * len(buf) + 64 * count`` bytes besides small constants."""
    size = len(buf)
    if size == 0 and count == 0:
        return np.empty(0, dtype=object)
    lengths, body_start = _check_strings(buf, offset, count, big_endian, verify, stored_crc, where)
    out = np.empty(count, dtype=object)
    pos = body_start
    for i, length in enumerate(lengths.tolist() if isinstance(lengths, np.ndarray) else lengths):
        out[i] = buf[pos:pos + length]
        pos += length
    return out


def check_strings(buf: bytes, offset: int, count: int, big_endian: bool, stored_crc: int,
                  where: str | Callable[[], str]) -> None:
    """Every check :func:`decode_strings` makes (layout, length and payload checksums),
    without making the values: what ``verify`` needs, in a few bytes per element."""
    if len(buf) or count:
        _check_strings(buf, offset, count, big_endian, True, stored_crc, where)


def _check_strings(buf: bytes, offset: int, count: int, big_endian: bool, verify: bool, stored_crc: int,
                   where: str | Callable[[], str]) -> tuple[np.ndarray | list[int], int]:
    """``(lengths, where the bodies start)`` of a checked DT_STRING payload."""
    size = len(buf)
    _check_string_size(size, count, where)
    lengths: np.ndarray | list[int]
    heads = np.frombuffer(buf, dtype=np.uint8, count=count)
    if count and int(heads.max()) < 0x80:  # the usual case: every length is one varint byte
        lengths, pos = heads, count
        length_crc = crc32c(byte_view(heads.astype(_length_width_dtype(big_endian)[0])))
        total = int(heads.sum(dtype=np.int64))
    else:
        lengths, pos = _varint_lengths(buf, offset, count, where)
        length_crc = _lengths_crc(lengths, big_endian)
        total = sum(lengths)
    _check_lengths_end(pos, size, offset, where)
    (stored_length_crc,) = FIXED32.unpack_from(buf, pos)
    if verify and unmask(stored_length_crc) != length_crc:
        raise ChecksumError(f"{_text(where)}: the length checksum does not match: stored "
                            f"{unmask(stored_length_crc):#010x}, computed {length_crc:#010x} "
                            f"(file offset {offset + pos})")
    body_start = pos + FIXED32.size
    if body_start + total != size:
        raise CorruptionError(f"{_text(where)}: string bodies take {total} bytes but the entry "
                              f"leaves {size - body_start} (payload at file offset {offset})")
    if verify:
        crc = crc32c(buf[body_start:], crc32c(buf[pos:body_start], length_crc))
        _check_tensor_crc(crc, stored_crc, size, offset, where)
    return lengths, body_start


def _varint_lengths(buf: bytes, offset: int, count: int, where: str | Callable[[], str]) -> tuple[list[int], int]:
    size = len(buf)
    lengths = []
    pos = 0
    for i in range(count):
        if buf[pos] < 0x80:
            length, pos = buf[pos], pos + 1
        else:
            length, pos = decode_varint(buf, pos, size, MAX_VARINT64_BYTES,
                                        f"{_text(where)}: length of string {i} (payload offset {offset})")
        lengths.append(length)
        _check_lengths_end(pos, size, offset, where)
    return lengths, pos


def _check_lengths_end(pos: int, size: int, offset: int, where: str | Callable[[], str]) -> None:
    """The lengths read so far (up to ``pos``) must leave room for their checksum."""
    if pos + FIXED32.size > size:
        raise CorruptionError(f"{_text(where)}: string lengths run past the payload end "
                              f"(file offset {offset + size})")


def _check_tensor_crc(crc: int, stored_crc: int, size: int, offset: int, where: str | Callable[[], str]) -> None:
    """Raise :class:`ChecksumError` unless ``crc``, computed over a tensor's ``size`` bytes at
    file ``offset``, is the one its entry stores (masked)."""
    if crc != unmask(stored_crc):
        raise ChecksumError(f"{_text(where)}: checksum mismatch: stored {unmask(stored_crc):#010x}, "
                            f"computed {crc:#010x} over {size} bytes at file offset {offset}")


def _numpy_dtype(dtype: DType, where: str | Callable[[], str]) -> np.dtype[Any]:
    """The numpy dtype values of ``dtype`` are read as; :class:`UnsupportedError` if none."""
    np_dtype = dtype.as_numpy_dtype
    if np_dtype is None:
        raise UnsupportedError(f"{_text(where)}: values of dtype {dtype.name} cannot be read by tfckpt")
    return np_dtype


def _text(where: str | Callable[[], str]) -> str:
    return where if isinstance(where, str) else where()


def cut_fixed(buffer: np.ndarray[Any, Any], at: int, shape: tuple[int, ...], dtype: DType, big_endian: bool,
              verify: bool, stored_crc: int, where: Callable[[], str], file_offset: int) -> np.ndarray[Any, Any]:
    """The fixed-size tensor stored at byte ``at`` of ``buffer`` (a uint8 array holding part
    of a data file from ``file_offset - at``): a view of the buffer when aligned, no copy;
    checksum-verified and byte-swapped in place as needed. The caller has checked that the
    bytes are there. Its fast twin for many tensors is :func:`tfckpt.bundle.fast_payload.cut_many`."""
    np_dtype = _numpy_dtype(dtype, where)
    nbytes = validate.fixed_nbytes(dtype, shape)
    raw = buffer[at:at + nbytes]
    if verify:
        _check_tensor_crc(crc32c(raw.data), stored_crc, nbytes, file_offset, where)
    if at % np_dtype.alignment == 0:
        out = raw.view(np_dtype).reshape(shape)
    else:  # numpy would allow an unaligned view, but many consumers (and speed) do not
        out = np.empty(shape, dtype=np_dtype)
        byte_view(out)[:] = raw.data
    if big_endian:
        swap_to_little_endian(out)
    return out


CHECK_CHUNK_BYTES = 16 << 20  # checksums of whole entries are computed this much at a time


def check_crc(source: ByteSource, offset: int, size: int, stored_crc: int, where: str) -> None:
    """Verify a fixed-size entry's checksum without holding more than a chunk in memory."""
    crc = 0
    for start in range(offset, offset + size, CHECK_CHUNK_BYTES):
        crc = crc32c(source.read_at(start, min(CHECK_CHUNK_BYTES, offset + size - start)), crc)
    _check_tensor_crc(crc, stored_crc, size, offset, where)


def swap_to_little_endian(out: np.ndarray[Any, Any]) -> None:
    """Byte-swap a big-endian bundle's values in place: each scalar component on its own (a
    complex number is two floats)."""
    itemsize = out.dtype.itemsize
    if itemsize > 1:
        width = itemsize // 2 if out.dtype.kind == "c" else itemsize
        out.reshape(-1).view(f"u{width}").byteswap(inplace=True)


def read_fixed(source: ByteSource, offset: int, shape: tuple[int, ...], dtype: DType,
               big_endian: bool, verify: bool, stored_crc: int, where: str,
               use_mmap: bool | Literal["c"] = False) -> np.ndarray[Any, Any]:
    """Read a fixed-size tensor straight into the returned array, verifying in place.

    With ``use_mmap`` an aligned little-endian tensor of a local file is returned as a
    read-only view of the memory-mapped file instead (``"c"``: a writable copy-on-write one, see
    :meth:`FileSource.mapping`): no copy, pages read on first touch.
    """
    np_dtype = _numpy_dtype(dtype, where)
    nbytes = validate.fixed_nbytes(dtype, shape)
    problem = validate.bytes_problem(offset, nbytes, source.size())  # before allocating anything
    if problem is not None:
        raise CorruptionError(f"{where}: {problem}")
    mapping = (source.mapping(copy_on_write=use_mmap == "c")
               if use_mmap and not big_endian and nbytes else None)
    if mapping is not None and offset % np_dtype.alignment == 0:
        out = np.frombuffer(mapping, dtype=np_dtype, count=math.prod(shape), offset=offset).reshape(shape)
        view = memoryview(mapping)[offset:offset + nbytes]
    else:
        out = np.empty(shape, dtype=np_dtype)
        view = byte_view(out)
        if view.nbytes:
            source.readinto_at(offset, view)
    if verify:
        _check_tensor_crc(crc32c(view), stored_crc, view.nbytes, offset, where)
    if big_endian:
        swap_to_little_endian(out)
    return out


# A partial read fetches the covering span of whole leading-axis rows in one request when it
# is at most this many times the bytes wanted (or small); otherwise one read per run.
SPAN_READ_FACTOR = 4
SPAN_READ_SMALL = 16 << 20


def read_fixed_region(source: ByteSource, offset: int, full_shape: tuple[int, ...], dtype: DType,
                      bounds: tuple[tuple[int, int], ...], big_endian: bool, where: str) -> np.ndarray[Any, Any]:
    """Read the hyperrectangle ``bounds`` of a stored row-major tensor, touching only the
    bytes it needs. Partial reads cannot be checksum-verified (the CRC covers the whole
    tensor); callers verify when the region is the whole tensor."""
    np_dtype = _numpy_dtype(dtype, where)
    itemsize = np_dtype.itemsize
    lengths = [hi - lo for lo, hi in bounds]
    out = np.empty(lengths, dtype=np_dtype)
    if out.size == 0:
        return out
    strides = [itemsize * math.prod(full_shape[i + 1:]) for i in range(len(full_shape))]
    problem = validate.bytes_problem(offset, validate.fixed_nbytes(dtype, full_shape), source.size())
    if problem is not None:
        raise CorruptionError(f"{where}: {problem}")
    # k: the outermost dimension after which the region spans whole dimensions, so each run
    # along dims 0..k is one contiguous byte range.
    k = len(bounds) - 1
    while k > 0 and bounds[k] == (0, full_shape[k]):
        k -= 1
    run_bytes = lengths[k] * strides[k] if bounds else itemsize
    flat = byte_view(out)
    if not bounds or k == 0:
        source.readinto_at(offset + (bounds[0][0] * strides[0] if bounds else 0), flat)
    else:
        span = lengths[0] * strides[0]
        if span <= max(SPAN_READ_FACTOR * out.nbytes, SPAN_READ_SMALL):
            block = np.empty((lengths[0], *full_shape[1:]), dtype=np_dtype)
            source.readinto_at(offset + bounds[0][0] * strides[0], byte_view(block))
            out[...] = block[(slice(None), *(slice(lo, hi) for lo, hi in bounds[1:]))]
        else:
            starts = np.zeros(1, dtype=np.int64)
            for dim in range(k):
                starts = (starts[:, None] + (np.arange(bounds[dim][0], bounds[dim][1]) * strides[dim])[None, :]).ravel()
            starts += offset + bounds[k][0] * strides[k]
            for i, start in enumerate(starts.tolist()):
                source.readinto_at(start, flat[i * run_bytes:(i + 1) * run_bytes])
    if big_endian:
        swap_to_little_endian(out)
    return out
