"""``StructuredValue`` (``protos/tfckpt/_proto/struct.proto``) decoded into Python values that
print as TensorFlow's own objects do, without TensorFlow.

A SavedModel records each function's input signature as a StructuredValue: nested tuples,
lists, dicts and named tuples whose leaves are TensorSpecs, type specs (ragged, sparse, ...),
shapes, dtypes and plain Python values. ``saved_model_cli`` prints these through ``str``,
``repr`` and ``type(x).__name__``, so the values here are real Python containers holding
stand-ins with TensorFlow's class names and text: ``TensorSpec(shape=(None, 3),
dtype=tf.float32, name='x')``, ``TensorShape([None, 3])``, ``tf.float32``.
"""

from __future__ import annotations

import collections
import functools
import math
from typing import Any

import numpy as np

from ._proto import struct_pb2, tensor_pb2, tensor_shape_pb2
from .dtypes import BY_ENUM
from .errors import CorruptionError

__all__ = ["MAX_NUMPY_RANK", "MAX_PRINTED_ELEMENTS", "BoundedTensorSpec", "DTypeValue", "TensorShapeValue", "TensorSpec", "TypeSpecValue", "decode_structure"]


class DTypeValue:
    """A dtype as TensorFlow prints it: ``repr`` ``tf.float32``, ``str`` ``<dtype: 'float32'>``."""

    def __init__(self, enum: int) -> None:
        dtype = BY_ENUM.get(enum)
        self.name = dtype.name if dtype is not None else f"<unknown dtype {enum}>"

    def __repr__(self) -> str:
        return f"tf.{self.name}"

    def __str__(self) -> str:
        return f"<dtype: '{self.name}'>"


DTypeValue.__name__ = "DType"  # saved_model_cli prints type(x).__name__


class TensorShapeValue:
    """A shape as TensorFlow's ``TensorShape`` prints it; iterating gives its dimensions."""

    def __init__(self, proto: tensor_shape_pb2.TensorShapeProto) -> None:
        if any(d.size < -1 for d in proto.dim):  # -1 is TensorFlow's unknown dimension; less means nothing
            raise CorruptionError(f"shape {[d.size for d in proto.dim]}: negative dimension")
        self.dims: list[int | None] | None = None if proto.unknown_rank else [
            None if d.size < 0 else d.size for d in proto.dim]

    def __iter__(self) -> Any:
        return iter(self.dims or [])

    def __repr__(self) -> str:
        return "TensorShape(None)" if self.dims is None else f"TensorShape({self.dims!r})"

    def __str__(self) -> str:
        if self.dims is None:
            return "<unknown>"
        if len(self.dims) == 1:
            return f"({self.dims[0]},)"
        return "(" + ", ".join(str(d) for d in self.dims) + ")"


TensorShapeValue.__name__ = "TensorShape"


class TensorSpec:
    """``tf.TensorSpec``: ``TensorSpec(shape=(None, 3), dtype=tf.float32, name='x')``."""

    def __init__(self, name: str | None, shape: TensorShapeValue, dtype: DTypeValue) -> None:
        self.name, self.shape, self.dtype = name, shape, dtype

    def __repr__(self) -> str:
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype!r}, name={self.name!r})"


class BoundedTensorSpec(TensorSpec):
    """A TensorSpec with bounds (TF-Agents' action specs), printed with them."""

    def __init__(self, name: str | None, shape: TensorShapeValue, dtype: DTypeValue, minimum: Any,
                 maximum: Any) -> None:
        super().__init__(name, shape, dtype)
        self.minimum, self.maximum = minimum, maximum

    def __repr__(self) -> str:
        return (f"BoundedTensorSpec(shape={self.shape}, dtype={self.dtype!r}, name={self.name!r}, "
                f"minimum={self.minimum!r}, maximum={self.maximum!r})")


class TypeSpecValue:
    """Any other type spec (ragged, sparse, ...): ``ClassName`` + the repr of its state
    tuple, as TensorFlow's generic ``TypeSpec.__repr__`` prints it."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self.state!r}"


# TypeSpecProto.TypeSpecClass -> the Python class TensorFlow decodes it to.
_TYPE_SPEC_CLASSES = {1: "SparseTensorSpec", 2: "IndexedSlicesSpec", 3: "RaggedTensorSpec", 4: "TensorArraySpec",
                      5: "DatasetSpec", 6: "IteratorSpec", 7: "OptionalSpec", 8: "PerReplicaSpec",
                      9: "VariableSpec", 10: "RowPartitionSpec"}


# Class stand-ins by name, a bounded number kept: a file may name any number of them.
@functools.lru_cache(maxsize=256)
def _type_spec_class(name: str) -> type[TypeSpecValue]:
    return type(name, (TypeSpecValue,), {})


@functools.lru_cache(maxsize=256)
def _named_tuple(name: str, fields: tuple[str, ...]) -> Any:
    try:
        return collections.namedtuple(name, fields, rename=True)
    except ValueError as exc:  # a name Python cannot give a class (TensorFlow fails on it too)
        raise CorruptionError(f"named tuple {name!r}: {exc}") from None


# TensorProto's value field for each dtype, as TensorFlow's MakeNdarray reads them; pairs: two
# numbers per element (complex); "half"/"float8": stored as integers holding the bits.
_VALUE_FIELDS = {
    "float32": "float_val", "float64": "double_val", "int64": "int64_val", "uint32": "uint32_val",
    "uint64": "uint64_val", "bool": "bool_val", "string": "string_val", "float16": "half_val",
    "bfloat16": "half_val", "complex64": "scomplex_val", "complex128": "dcomplex_val",
    "float8_e5m2": "float8_val", "float8_e4m3fn": "float8_val", "float4_e2m1fn": "float8_val",
    **dict.fromkeys(("int32", "uint8", "uint16", "int16", "int8", "qint32", "quint8", "qint8", "qint16", "quint16",
                     "int4", "uint4", "int2", "uint2"), "int_val"),
}
_BITS_FIELDS = {"half_val": np.uint16, "float8_val": np.uint8}
MAX_NUMPY_RANK = 64  # numpy's NPY_MAXDIMS
MAX_PRINTED_ELEMENTS = 1000  # numpy's default print threshold: what a value may print beyond those stored


def _printed_elements(shape: tuple[int, ...]) -> int:
    """How many elements numpy's repr of an array of this shape prints (all, or a
    summary of ``edgeitems`` at each end of every axis)."""
    options = np.get_printoptions()
    count = math.prod(shape)
    if count <= options["threshold"]:
        return count
    return math.prod(min(d, 2 * options["edgeitems"]) for d in shape)


def _array(proto: tensor_pb2.TensorProto) -> Any:
    """A TensorProto's value as numpy, read as TensorFlow's ``MakeNdarray`` reads it (values
    in the dtype's field, missing ones repeating the last, none meaning zeros), within bounds
    the bytes present set: a repeated value is a broadcast view (nothing allocated), and the
    value prints at most as many elements as it stores, or :data:`MAX_PRINTED_ELEMENTS`.
    ``None`` for dtypes without a numpy type."""
    dtype = BY_ENUM.get(proto.dtype)
    np_dtype = dtype.as_numpy_dtype if dtype is not None else None
    if dtype is None or np_dtype is None:
        return None
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    where = f"{dtype.name} tensor of shape {list(shape)}"
    if any(d < 0 for d in shape):
        raise CorruptionError(f"{where}: negative dimension")
    if len(shape) > MAX_NUMPY_RANK or math.prod(max(d, 1) for d in shape) * np_dtype.itemsize >= 1 << 63:
        raise CorruptionError(f"{where}: larger than any array numpy can make")
    count = math.prod(shape)
    if proto.tensor_content:
        if len(proto.tensor_content) != count * np_dtype.itemsize or np_dtype.hasobject:
            raise CorruptionError(f"{where}: {len(proto.tensor_content)} bytes of tensor_content")
        return np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(shape)
    field = _VALUE_FIELDS.get(dtype.name)
    stored = list(getattr(proto, field)) if field is not None else []
    if field in ("scomplex_val", "dcomplex_val"):
        stored = [complex(re, im) for re, im in zip(stored[::2], stored[1::2])]
    if len(stored) > count:
        raise CorruptionError(f"{where}: {len(stored)} values in {field}")
    if _printed_elements(shape) > max(len(stored), MAX_PRINTED_ELEMENTS):
        raise CorruptionError(f"{where}: {len(stored)} stored values would print as "
                              f"{_printed_elements(shape)} (at most {MAX_PRINTED_ELEMENTS} beyond those stored)")
    bits = _BITS_FIELDS.get(field or "")
    values = np.array(stored, dtype=bits).view(np_dtype) if bits is not None else np.array(stored, dtype=np_dtype)
    if values.size == count:
        return values.reshape(shape)
    last = values[-1:].reshape(()) if values.size else np.zeros((), np_dtype)
    if values.size <= 1:
        return np.broadcast_to(last, shape)  # a view: a huge shape costs nothing
    if count > max(values.size, MAX_PRINTED_ELEMENTS):
        raise CorruptionError(f"{where}: {values.size} stored values would be repeated to {count}")
    return np.concatenate([values, np.broadcast_to(last, (count - values.size,))]).reshape(shape)


def decode_structure(value: struct_pb2.StructuredValue) -> Any:
    """The Python value a StructuredValue stands for (see the module docstring).

    Examples
    --------
    >>> from tfckpt._proto import struct_pb2
    >>> spec = struct_pb2.StructuredValue()
    >>> spec.tensor_spec_value.name = "x"
    >>> spec.tensor_spec_value.dtype = 1
    >>> spec.tensor_spec_value.shape.dim.add().size = -1
    >>> decode_structure(spec)
    TensorSpec(shape=(None,), dtype=tf.float32, name='x')
    """
    kind = value.WhichOneof("kind")
    if kind is None or kind == "none_value":
        return None
    if kind in ("float64_value", "int64_value", "string_value", "bool_value"):
        return getattr(value, kind)
    if kind == "tensor_shape_value":
        return TensorShapeValue(value.tensor_shape_value)
    if kind == "tensor_dtype_value":
        return DTypeValue(value.tensor_dtype_value)
    if kind == "tensor_spec_value":
        spec = value.tensor_spec_value
        return TensorSpec(spec.name or None, TensorShapeValue(spec.shape), DTypeValue(spec.dtype))
    if kind == "bounded_tensor_spec_value":
        bounded = value.bounded_tensor_spec_value
        return BoundedTensorSpec(bounded.name or None, TensorShapeValue(bounded.shape), DTypeValue(bounded.dtype),
                                 _array(bounded.minimum), _array(bounded.maximum))
    if kind == "type_spec_value":
        spec_proto = value.type_spec_value
        name = _TYPE_SPEC_CLASSES.get(spec_proto.type_spec_class) or (
            spec_proto.type_spec_class_name.rsplit(".", 1)[-1] or "TypeSpec")
        return _type_spec_class(name)(decode_structure(spec_proto.type_state))
    if kind == "list_value":
        return [decode_structure(v) for v in value.list_value.values]
    if kind == "tuple_value":
        return tuple(decode_structure(v) for v in value.tuple_value.values)
    if kind == "dict_value":
        return {key: decode_structure(v) for key, v in value.dict_value.fields.items()}
    if kind == "named_tuple_value":
        named = value.named_tuple_value
        cls = _named_tuple(named.name, tuple(pair.key for pair in named.values))
        return cls(*(decode_structure(pair.value) for pair in named.values))
    return _array(getattr(value, kind))  # tensor_value / numpy_value
