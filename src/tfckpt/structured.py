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
from typing import Any

import numpy as np

from ._proto import struct_pb2, tensor_pb2, tensor_shape_pb2
from .dtypes import BY_ENUM

__all__ = ["BoundedTensorSpec", "DTypeValue", "TensorShapeValue", "TensorSpec", "TypeSpecValue", "decode_structure"]


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


@functools.cache
def _type_spec_class(name: str) -> type[TypeSpecValue]:
    return type(name, (TypeSpecValue,), {})


@functools.cache
def _named_tuple(name: str, fields: tuple[str, ...]) -> Any:
    return collections.namedtuple(name, fields, rename=True)


def _array(proto: tensor_pb2.TensorProto) -> Any:
    """A small TensorProto's value as numpy (bounds of BoundedTensorSpec, numpy values)."""
    dtype = BY_ENUM.get(proto.dtype)
    np_dtype = dtype.as_numpy_dtype if dtype is not None else None
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    if np_dtype is None:
        return None
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(shape).copy()
    for field in ("float_val", "double_val", "int_val", "int64_val", "bool_val"):
        values = list(getattr(proto, field))
        if values:
            flat = np.array(values, dtype=np_dtype)
            return np.broadcast_to(flat[-1], shape).copy() if flat.size == 1 else flat.reshape(shape)
    return np.zeros(shape, dtype=np_dtype)


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
