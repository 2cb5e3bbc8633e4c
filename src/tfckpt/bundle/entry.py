"""Bundle index records: the header (key ``""``) and one entry per tensor key.

Values in the index table are protobufs (``protos/tfckpt/_proto/tensor_bundle.proto``)::

    BundleHeaderProto: num_shards: int32 = 1 | endianness: enum = 2 (LITTLE 0, BIG 1)
                       | version: VersionDef = 3 (producer 1, min_consumer 0)
    BundleEntryProto:  dtype: DataType = 1 | shape: TensorShapeProto = 2 | shard_id: int32 = 3
                       | offset: int64 = 4 | size: int64 = 5 | crc32c: fixed32 = 6 (masked)
                       | slices: repeated TensorSliceProto = 7

They are converted here, at the bundle edge, into the frozen dataclasses :class:`BundleHeader`
and :class:`TensorInfo`; nothing above this module touches protobuf objects. The encoder
reproduces TensorFlow's bytes: fields in number order, zero scalars omitted, the shape always
present (a scalar's entry holds ``12 00``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from google.protobuf.message import DecodeError

from .._proto import tensor_bundle_pb2
from ..coding import FIXED32, encode_varint
from ..dtypes import BY_ENUM, DType, from_enum
from ..errors import CorruptionError, UnsupportedError
from .slices import SLICE_KEY_PREFIX, TensorSlice, describe_key

__all__ = [
    "BIG",
    "CONSUMER_VERSION",
    "LITTLE",
    "MAX_ELEMENTS",
    "MAX_RANK",
    "TAIL_FIELDS",
    "TENSOR_BUNDLE_MIN_CONSUMER",
    "TENSOR_BUNDLE_VERSION",
    "BundleHeader",
    "TensorInfo",
    "check_shape",
    "encoded_head",
    "peek",
    "peek_dtype_shape",
    "shape_problem",
]

MAX_RANK = 254  # tensorflow TensorShape::kMaxDimensions
MAX_ELEMENTS = (1 << 63) - 1  # shapes whose element count overflows int64 are invalid
TENSOR_BUNDLE_VERSION = 1  # tensor_bundle.h kTensorBundleVersion (producer)
TENSOR_BUNDLE_MIN_CONSUMER = 0
CONSUMER_VERSION = 1  # tfckpt reads what a version-1 consumer may read
LITTLE = "little"
_SLICE_NAME_START = SLICE_KEY_PREFIX.decode("latin-1")  # how a slice's key starts as a decoded name
BIG = "big"


@dataclass(frozen=True)
class BundleHeader:
    """The bundle-wide record stored under the empty key."""

    num_shards: int = 1
    endianness: str = LITTLE
    producer: int = TENSOR_BUNDLE_VERSION
    min_consumer: int = TENSOR_BUNDLE_MIN_CONSUMER
    bad_consumers: tuple[int, ...] = ()

    def encode(self) -> bytes:
        proto = tensor_bundle_pb2.BundleHeaderProto(num_shards=self.num_shards)
        header = tensor_bundle_pb2.BundleHeaderProto
        proto.endianness = header.BIG if self.endianness == BIG else header.LITTLE
        proto.version.producer = self.producer
        proto.version.min_consumer = self.min_consumer
        proto.version.bad_consumers.extend(self.bad_consumers)
        return proto.SerializeToString()

    @classmethod
    def decode(cls, value: bytes, where: str) -> BundleHeader:
        try:
            proto = tensor_bundle_pb2.BundleHeaderProto.FromString(value)
        except DecodeError as exc:
            raise CorruptionError(f"{where}: unable to parse the bundle header: {exc}") from exc
        version = proto.version
        if version.producer < 0:
            raise CorruptionError(f"{where}: checkpoint producer version {version.producer} is below 0")
        if version.min_consumer > CONSUMER_VERSION or CONSUMER_VERSION in version.bad_consumers:
            raise UnsupportedError(
                f"{where}: checkpoint needs a newer reader (min_consumer {version.min_consumer}, "
                f"bad_consumers {list(version.bad_consumers)}; tfckpt reads consumer version "
                f"{CONSUMER_VERSION})")
        if proto.endianness not in (0, 1):
            raise CorruptionError(f"{where}: unknown endianness {proto.endianness} in the header")
        if proto.num_shards < 0:
            raise CorruptionError(f"{where}: negative num_shards {proto.num_shards} in the header")
        return cls(proto.num_shards, BIG if proto.endianness == 1 else LITTLE,
                   version.producer, version.min_consumer, tuple(version.bad_consumers))


@dataclass(frozen=True)
class TensorInfo:
    """What the index says about one tensor; no tensor data.

    ``masked_crc32c`` is the checksum exactly as stored (masked, see :func:`tfckpt.coding.mask`;
    the proto field is ``crc32c``). ``slices`` is non-empty only for the
    full-tensor entry of a partitioned tensor, whose data lives in per-slice entries.

    Examples
    --------
    >>> import tfckpt
    >>> info = tfckpt.load_checkpoint("examples/keras_mlp").tensor_info("save_counter/.ATTRIBUTES/VARIABLE_VALUE")
    >>> info.dtype.name, info.shape, info.size, info.num_elements
    ('int64', (), 8, 1)
    """

    name: str
    dtype: DType
    shape: tuple[int, ...]
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    masked_crc32c: int = 0
    slices: tuple[TensorSlice, ...] = ()

    @classmethod
    def of_data(cls, name: str, dtype: DType, shape: tuple[int, ...], shard_id: int, offset: int, size: int,
                masked_crc32c: int) -> TensorInfo:
        """A record of an ordinary tensor just written: the writer makes one per tensor, and the
        frozen dataclass's ``__init__`` (a ``object.__setattr__`` per field) would cost more
        than the rest of a small tensor's bookkeeping."""
        info = object.__new__(cls)
        info.__dict__.update(name=name, dtype=dtype, shape=shape, shard_id=shard_id, offset=offset, size=size,
                             masked_crc32c=masked_crc32c, slices=())
        return info

    @property
    def num_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    def encode(self) -> bytes:
        if self.slices:
            return self._encode_with_protobuf()
        # dtype and shape come first and repeat across a checkpoint: encoded once per pair,
        # then the per-tensor fields appended by hand (the bytes protobuf would produce).
        return b"".join((encoded_head(self.dtype, self.shape),
                         b"\x18" + encode_varint(self.shard_id) if self.shard_id else b"",
                         b"\x20" + encode_varint(self.offset) if self.offset else b"",
                         b"\x28" + encode_varint(self.size) if self.size else b"",
                         b"\x35" + FIXED32.pack(self.masked_crc32c) if self.masked_crc32c else b""))

    def _encode_with_protobuf(self) -> bytes:
        proto = tensor_bundle_pb2.BundleEntryProto(
            dtype=cast(Any, self.dtype.as_datatype_enum), shard_id=self.shard_id, offset=self.offset,
            size=self.size, crc32c=self.masked_crc32c)
        proto.shape.SetInParent()
        for dim in self.shape:
            proto.shape.dim.add(size=dim)
        for piece in self.slices:
            piece.to_proto(proto.slices.add())
        return proto.SerializeToString()

    @classmethod
    def decode(cls, name: str, value: bytes, where: str) -> TensorInfo:
        fields = _decode_plain(value)
        if fields is not None:
            return cls.of_data(name, *fields)
        try:
            proto = tensor_bundle_pb2.BundleEntryProto.FromString(value)
        except DecodeError as exc:
            raise CorruptionError(f"{where}: entry for key {describe_key(name)!r} not parseable: {exc}") from exc
        return cls.from_proto(name, proto, where)

    @classmethod
    def decode_many(cls, items: list[tuple[str, bytes]], where: str) -> list[TensorInfo]:
        """Decode many entries: the plain layout by hand, the rest with one protobuf parse
        (an index can hold 100,000 entries)."""
        out: list[TensorInfo | None] = []
        rest: list[tuple[str, bytes]] = []
        for name, value in items:
            fields = _decode_plain(value)
            if fields is None:
                out.append(None)
                rest.append((name, value))
            else:
                out.append(cls.of_data(name, *fields))
        if rest:
            decoded = iter(cls._decode_with_protobuf(rest, where))
            return [info if info is not None else next(decoded) for info in out]
        return cast("list[TensorInfo]", out)

    @classmethod
    def _decode_with_protobuf(cls, items: list[tuple[str, bytes]], where: str) -> list[TensorInfo]:
        framed = b"".join(b"\x0a" + encode_varint(len(value)) + value for _, value in items)
        try:
            protos = tensor_bundle_pb2.BundleEntryList.FromString(framed).entries
        except DecodeError:
            return [cls.decode(name, value, where) for name, value in items]  # finds the culprit
        return [cls.from_proto(name, proto, where) for (name, _), proto in zip(items, protos)]

    @classmethod
    def from_proto(cls, name: str, proto: tensor_bundle_pb2.BundleEntryProto, where: str) -> TensorInfo:
        dtype = BY_ENUM.get(proto.dtype) or from_enum(proto.dtype, f"{where}: key {describe_key(name)!r}")
        shape = tuple([dim.size for dim in proto.shape.dim])
        problem = shape_problem(shape)
        if problem is not None:
            raise CorruptionError(f"{where}: key {describe_key(name)!r}: {problem}")
        if proto.shard_id < 0 or proto.offset < 0 or proto.size < 0:
            raise CorruptionError(f"{where}: key {describe_key(name)!r}: negative shard_id/offset/size "
                                  f"({proto.shard_id}, {proto.offset}, {proto.size})")
        if proto.slices and name.startswith(_SLICE_NAME_START):
            raise CorruptionError(f"{where}: key {describe_key(name)!r}: the data entry of a slice lists "
                                  f"{len(proto.slices)} slices of its own; expected none (only a partitioned "
                                  f"tensor's full entry lists slices)")
        slices = tuple(TensorSlice.from_proto(s, shape, f"{where}: key {describe_key(name)!r}") for s in proto.slices) \
            if proto.slices else ()
        return cls(name, dtype, shape, proto.shard_id, proto.offset, proto.size, proto.crc32c, slices)


_HEAD_CACHE_SIZE = 4096
_HEADS: dict[tuple[DType, tuple[int, ...]], bytes] = {}  # (dtype, shape) -> encoded fields 1-2
_PLAIN_HEADS: dict[bytes, tuple[DType, tuple[int, ...]]] = {}  # the reverse, for decoding
# shard_id (int32), offset and size (int64), as varints: tag -> (slot, the bits a value may
# use; a varint beyond them is a negative number, which the protobuf decoder refuses). One
# table for the record decoder and its fast twin (fast_entries).
TAIL_FIELDS = {0x18: (0, 31), 0x20: (1, 63), 0x28: (2, 63)}


def encoded_head(dtype: DType, shape: tuple[int, ...]) -> bytes:
    """The first two fields of an entry (dtype, shape) as protobuf encodes them, from a cache
    (a checkpoint repeats few pairs)."""
    head = _HEADS.get((dtype, shape))
    if head is None:
        if len(_HEADS) >= _HEAD_CACHE_SIZE:
            _HEADS.clear()
        head = _HEADS[(dtype, shape)] = TensorInfo("", dtype, shape)._encode_with_protobuf()
    return head


def peek(value: bytes) -> tuple[DType, tuple[int, ...]] | None:
    """dtype and shape of an entry in the plain layout (``08 dtype 12 len shape ...``), from
    a cache of the heads seen (a checkpoint repeats few); ``None`` when the full decoder is
    needed."""
    if len(value) < 4 or value[0] != 0x08 or value[1] >= 0x80 or value[2] != 0x12 or value[3] >= 0x80:
        return None
    end = 4 + value[3]
    head = value[:end]
    known = _PLAIN_HEADS.get(head)
    if known is None:
        peeked = peek_dtype_shape(head)
        if peeked is None or peeked[0] not in BY_ENUM or len(head) != end:
            return None
        if len(_PLAIN_HEADS) >= _HEAD_CACHE_SIZE:
            _PLAIN_HEADS.clear()
        known = _PLAIN_HEADS[head] = (BY_ENUM[peeked[0]], peeked[1])
    return known


def _decode_plain(value: bytes) -> tuple[DType, tuple[int, ...], int, int, int, int] | None:
    """``(dtype, shape, shard_id, offset, size, crc)`` of an entry in the layout writers
    produce (see :meth:`TensorInfo.encode`), decoded without protobuf; ``None`` for any other
    layout or anything doubtful, which the protobuf decoder then handles with precise errors.
    """
    known = peek(value)
    if known is None:
        return None
    end = 4 + value[3]
    fields = [0, 0, 0]
    crc = 0
    pos, n, last = end, len(value), 0
    while pos < n:
        tag = value[pos]
        if tag == 0x35 and pos + 5 == n:
            (crc,) = FIXED32.unpack_from(value, pos + 1)
            break
        field = TAIL_FIELDS.get(tag)
        if field is None or tag <= last:
            return None  # slices, unknown fields, repeats: protobuf's job
        last = tag
        if pos + 2 < n and value[pos + 1] < 0x80:  # one-byte and two-byte varints, inline
            number, pos = value[pos + 1], pos + 2
        elif pos + 3 < n and value[pos + 2] < 0x80:
            number, pos = (value[pos + 1] & 0x7F) | (value[pos + 2] << 7), pos + 3
        else:
            read = _varint_at(value, pos + 1)
            if read is None:
                return None
            number, pos = read
        slot, bits = field
        if number >> bits:
            return None  # negative as int32/int64: let the full decoder say so
        fields[slot] = number
    return known[0], known[1], fields[0], fields[1], fields[2], crc


def _varint_at(value: bytes, pos: int) -> tuple[int, int] | None:
    """``(number, next position)`` of the varint at ``pos``; ``None`` if it runs past the end
    or past 64 bits (the callers then leave the entry to the protobuf decoder)."""
    number, shift, n = 0, 0, len(value)
    while pos < n and shift <= 63:
        byte = value[pos]
        pos += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            return number, pos
        shift += 7
    return None


def peek_dtype_shape(value: bytes) -> tuple[int, tuple[int, ...]] | None:
    """dtype code and shape straight from an entry's bytes, for listing huge indexes fast.

    Handles the layout every writer produces (``08 dtype 12 len (12 len 08 size)*``, one-byte
    lengths); returns ``None`` for anything else, and for any shape that is not plainly valid,
    so that the caller falls back to the full decoder and its precise errors.
    """
    try:
        pos, dtype = 0, 0
        if value[0] == 0x08:
            dtype = value[1]
            if dtype >= 0x80:
                return None
            pos = 2
        if value[pos] != 0x12 or value[pos + 1] >= 0x80:
            return None
        end = pos + 2 + value[pos + 1]
        pos += 2
        dims = []
        while pos < end:
            if value[pos] != 0x12 or value[pos + 1] >= 0x80:
                return None
            dim_end = pos + 2 + value[pos + 1]
            pos += 2
            size = 0
            if pos < dim_end:
                if value[pos] != 0x08:
                    return None  # a named dimension: leave it to protobuf
                read = _varint_at(value, pos + 1)
                if read is None:
                    return None
                size, pos = read
            if pos != dim_end or size >= MAX_ELEMENTS:
                return None
            dims.append(size)
        if pos != end or len(dims) > MAX_RANK:
            return None
        shape = tuple(dims)
        return None if shape_problem(shape) is not None else (dtype, shape)
    except IndexError:
        return None


def shape_problem(shape: tuple[int, ...]) -> str | None:
    """Whether ``shape`` is a valid TensorFlow shape (rank at most 254, no negative dimension,
    element count within int64); if not, which rule fails."""
    if len(shape) > MAX_RANK:
        return f"invalid tensor shape: rank {len(shape)} exceeds {MAX_RANK}"
    if shape and min(shape) < 0:
        return f"invalid tensor shape {list(shape)}: negative dimension"
    count = 1
    for dim in shape:  # at most 254 factors below 2**63: a bounded Python int
        count *= dim
    if count > MAX_ELEMENTS:
        return f"invalid tensor shape {list(shape)}: element count overflows int64"
    return None


def check_shape(shape: tuple[int, ...], where: str) -> None:
    """Raise :class:`CorruptionError` (saying which rule failed, see :func:`shape_problem`)
    unless ``shape`` is a valid TensorFlow shape."""
    problem = shape_problem(shape)
    if problem is not None:
        raise CorruptionError(f"{where}: {problem}")
