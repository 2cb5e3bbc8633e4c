"""TensorFlow's DataType codes and how each is stored in a bundle's data files.

Every fixed-size type is stored as a memcpy of its elements in row-major order (one byte per
element for the sub-byte types int4/uint4/int2/uint2/float4: value in the low bits), in the
byte order the header names. DT_STRING and DT_VARIANT have their own variable-size layouts
(see :mod:`tfckpt.bundle.payload`). The quantized types are stored like their storage integer
types; tfckpt returns them as that numpy type and keeps TensorFlow's name in :class:`DType`.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from .errors import InvalidArgumentError, TfckptError, UnsupportedError

__all__ = ["BY_ENUM", "BY_NAME", "REF_OFFSET", "STRING", "DType", "DTypeLike", "DataType", "as_dtype", "from_enum"]


class DataType(enum.IntEnum):
    """``tensorflow.DataType`` enum values (tensorflow/core/framework/types.proto).

    Examples
    --------
    >>> DataType.DT_BFLOAT16.value, DataType(1).name
    (14, 'DT_FLOAT')
    """

    DT_INVALID = 0
    DT_FLOAT = 1
    DT_DOUBLE = 2
    DT_INT32 = 3
    DT_UINT8 = 4
    DT_INT16 = 5
    DT_INT8 = 6
    DT_STRING = 7
    DT_COMPLEX64 = 8
    DT_INT64 = 9
    DT_BOOL = 10
    DT_QINT8 = 11
    DT_QUINT8 = 12
    DT_QINT32 = 13
    DT_BFLOAT16 = 14
    DT_QINT16 = 15
    DT_QUINT16 = 16
    DT_UINT16 = 17
    DT_COMPLEX128 = 18
    DT_HALF = 19
    DT_RESOURCE = 20
    DT_VARIANT = 21
    DT_UINT32 = 22
    DT_UINT64 = 23
    DT_FLOAT8_E5M2 = 24
    DT_FLOAT8_E4M3FN = 25
    DT_FLOAT8_E4M3FNUZ = 26
    DT_FLOAT8_E4M3B11FNUZ = 27
    DT_FLOAT8_E5M2FNUZ = 28
    DT_INT4 = 29
    DT_UINT4 = 30
    DT_INT2 = 31
    DT_UINT2 = 32
    DT_FLOAT4_E2M1FN = 33
    # Reference types: TF1 graph tensors aliasing a variable (value type + 100); never stored.
    DT_FLOAT_REF = 101
    DT_DOUBLE_REF = 102
    DT_INT32_REF = 103
    DT_UINT8_REF = 104
    DT_INT16_REF = 105
    DT_INT8_REF = 106
    DT_STRING_REF = 107
    DT_COMPLEX64_REF = 108
    DT_INT64_REF = 109
    DT_BOOL_REF = 110
    DT_QINT8_REF = 111
    DT_QUINT8_REF = 112
    DT_QINT32_REF = 113
    DT_BFLOAT16_REF = 114
    DT_QINT16_REF = 115
    DT_QUINT16_REF = 116
    DT_UINT16_REF = 117
    DT_COMPLEX128_REF = 118
    DT_HALF_REF = 119
    DT_RESOURCE_REF = 120
    DT_VARIANT_REF = 121
    DT_UINT32_REF = 122
    DT_UINT64_REF = 123
    DT_FLOAT8_E5M2_REF = 124
    DT_FLOAT8_E4M3FN_REF = 125
    DT_FLOAT8_E4M3FNUZ_REF = 126
    DT_FLOAT8_E4M3B11FNUZ_REF = 127
    DT_FLOAT8_E5M2FNUZ_REF = 128
    DT_INT4_REF = 129
    DT_UINT4_REF = 130
    DT_INT2_REF = 131
    DT_UINT2_REF = 132
    DT_FLOAT4_E2M1FN_REF = 133


@dataclass(frozen=True, eq=False)  # one instance per dtype (the table below): identity is equality
class DType:
    """A TensorFlow dtype as stored in checkpoints.

    ``name`` is TensorFlow's name (``tf.DType.name``), e.g. ``"float32"``, ``"bfloat16"``,
    ``"string"``, ``"qint8"``. ``as_numpy_dtype`` is the numpy dtype tfckpt returns values as
    (``object`` for strings, the storage integer type for quantized types); it is ``None`` for
    DT_RESOURCE and DT_VARIANT, whose values tfckpt does not decode.

    Examples
    --------
    >>> import tfckpt
    >>> tfckpt.as_dtype("bfloat16").as_datatype_enum
    14
    >>> tfckpt.as_dtype(np.float32).name
    'float32'
    """

    name: str
    as_datatype_enum: int
    # The numpy dtype, or the name of an ml_dtypes type: importing ml_dtypes takes seconds, so it
    # is imported when one of its types is first needed (see as_numpy_dtype), not with tfckpt.
    _numpy: np.dtype[Any] | str | None = field(compare=False, repr=False)
    is_quantized: bool = field(default=False, compare=False)

    itemsize: int = field(default=0, compare=False)  # bytes per element stored; 0: variable size
    is_fixed_size: bool = field(default=False, compare=False)

    @property
    def as_numpy_dtype(self) -> np.dtype[Any] | None:
        """The numpy dtype values are returned as (an ``ml_dtypes`` type for bfloat16, the
        float8/float4 and int4/int2 types); ``None`` for ``resource`` and ``variant``."""
        return _ml_dtype(self._numpy) if isinstance(self._numpy, str) else self._numpy

    @property
    def is_ref(self) -> bool:
        """Whether this is a TF1 reference type (``float32_ref``): graph metadata only."""
        return self.as_datatype_enum > REF_OFFSET

    @property
    def base_dtype(self) -> DType:
        """The value type of a reference type (``float32`` for ``float32_ref``); else itself."""
        return BY_ENUM[self.as_datatype_enum - REF_OFFSET] if self.is_ref else self

    # TensorFlow's DType predicates and limits, which conversion scripts test.

    @property
    def is_bool(self) -> bool:
        """Whether this is ``bool``."""
        return self.base_dtype.name == "bool"

    @property
    def is_complex(self) -> bool:
        """Whether this is ``complex64`` or ``complex128``."""
        return self._kind() == "complex"

    @property
    def is_floating(self) -> bool:
        """Whether this is a real floating-point type (``bfloat16`` and the float8/float4 types too)."""
        return self._kind() == "float"

    @property
    def is_integer(self) -> bool:
        """Whether this is a (non-quantized) integer type, ``int4``/``uint2`` included."""
        return self._kind() == "int"

    @property
    def is_unsigned(self) -> bool:
        """Whether this is an unsigned integer type."""
        return self.is_integer and self._limits()[0] == 0

    @property
    def size(self) -> int:
        """Bytes per element (1 for the sub-byte types); 0 for ``string``, ``resource``, ``variant``."""
        return self.itemsize

    @property
    def min(self) -> Any:
        """The smallest value of this numeric type, as TF gives it (a numpy scalar for floats).

        Raises ``TypeError`` for ``bool``, ``string``, complex, quantized and opaque types.
        """
        return self._limits()[0]

    @property
    def max(self) -> Any:
        """The largest value of this numeric type (see :attr:`min`)."""
        return self._limits()[1]

    @property
    def real_dtype(self) -> DType:
        """The type of the real part: ``float32`` for ``complex64``, ``float64`` for ``complex128``; else itself."""
        return _REAL.get(self.base_dtype.name, self)

    def _kind(self) -> str:
        """``"float"``, ``"int"``, ``"complex"`` or ``""`` (bool, strings, quantized and opaque types)."""
        np_dtype = self.as_numpy_dtype
        if np_dtype is None or self.is_quantized or self.is_bool:
            return ""
        if not isinstance(self._numpy, str):  # numpy's own types
            return {"c": "complex", "f": "float", "i": "int", "u": "int"}.get(np_dtype.kind, "")
        try:  # ml_dtypes' finfo/iinfo know its bfloat16, float8/float4 and int4/int2 types
            _ml_dtypes().finfo(np_dtype.type)
            return "float"
        except (ValueError, TypeError):
            pass
        try:
            _ml_dtypes().iinfo(np_dtype.type)
            return "int"
        except (ValueError, TypeError):
            return ""

    def _limits(self) -> tuple[Any, Any]:
        kind = self._kind()
        if kind not in ("float", "int"):
            raise TypeError(f"{self.name} has no minimum or maximum value (not a real numeric type)")
        assert self.as_numpy_dtype is not None
        infos: Any = _ml_dtypes() if isinstance(self._numpy, str) else np  # ml_dtypes' are untyped
        info = (infos.finfo if kind == "float" else infos.iinfo)(self.as_numpy_dtype.type)
        return info.min, info.max

    def __eq__(self, other: object) -> bool:
        """TensorFlow's rule: equal to whatever names the same type (a DType of tfckpt, of
        ``tfckpt.compat`` or of TensorFlow, a TF name, a DataType code, a numpy type)."""
        if other is None:  # np.dtype(None) would be float64
            return False
        code = getattr(other, "as_datatype_enum", None)
        if not isinstance(code, int):
            try:
                code = as_dtype(cast(DTypeLike, other)).as_datatype_enum
            except (TfckptError, TypeError, ValueError):  # not a dtype at all: unequal, as in TF
                return False
        return self.as_datatype_enum == code

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return self.as_datatype_enum  # TF's: the DataType code

    def __repr__(self) -> str:
        return f"tfckpt.{self.name}"


def _stored(np_type: Any) -> np.dtype[Any]:
    np_dtype: np.dtype[Any] = np.dtype(np_type)
    if np_dtype.itemsize > 1 and np_dtype.kind != "O":
        np_dtype = np_dtype.newbyteorder("<")  # data files are little-endian unless marked BIG
    return np_dtype


def _dt(code: DataType, name: str, np_type: Any, quantized: bool = False) -> DType:
    np_dtype = None if np_type is None else _stored(np_type)
    itemsize = 0 if np_dtype is None or np_dtype.kind == "O" else np_dtype.itemsize
    return DType(name, int(code), np_dtype, quantized, itemsize, itemsize > 0)


def _ml(code: DataType, name: str, itemsize: int) -> DType:
    """A type numpy gets from ml_dtypes, whose type ``ml_dtypes.<name>`` is looked up on first use."""
    return DType(name, int(code), name, False, itemsize, True)


def _ml_dtypes() -> Any:
    import ml_dtypes  # here, not at the top: seconds to import, needed only for its types

    return ml_dtypes


_ML_RESOLVED: dict[str, np.dtype[Any]] = {}


def _ml_dtype(name: str) -> np.dtype[Any]:
    """The stored numpy dtype of ml_dtypes' type ``name``; also makes it known to :func:`as_dtype`."""
    found = _ML_RESOLVED.get(name)
    if found is None:
        found = _ML_RESOLVED[name] = _stored(getattr(_ml_dtypes(), name))
        _BY_NUMPY.setdefault(found, BY_NAME[name])
    return found


_ALL = [
    _dt(DataType.DT_FLOAT, "float32", np.float32),
    _dt(DataType.DT_DOUBLE, "float64", np.float64),
    _dt(DataType.DT_INT32, "int32", np.int32),
    _dt(DataType.DT_UINT8, "uint8", np.uint8),
    _dt(DataType.DT_INT16, "int16", np.int16),
    _dt(DataType.DT_INT8, "int8", np.int8),
    _dt(DataType.DT_STRING, "string", object),
    _dt(DataType.DT_COMPLEX64, "complex64", np.complex64),
    _dt(DataType.DT_INT64, "int64", np.int64),
    _dt(DataType.DT_BOOL, "bool", np.bool_),
    _dt(DataType.DT_QINT8, "qint8", np.int8, quantized=True),
    _dt(DataType.DT_QUINT8, "quint8", np.uint8, quantized=True),
    _dt(DataType.DT_QINT32, "qint32", np.int32, quantized=True),
    _ml(DataType.DT_BFLOAT16, "bfloat16", 2),
    _dt(DataType.DT_QINT16, "qint16", np.int16, quantized=True),
    _dt(DataType.DT_QUINT16, "quint16", np.uint16, quantized=True),
    _dt(DataType.DT_UINT16, "uint16", np.uint16),
    _dt(DataType.DT_COMPLEX128, "complex128", np.complex128),
    _dt(DataType.DT_HALF, "float16", np.float16),
    _dt(DataType.DT_RESOURCE, "resource", None),
    _dt(DataType.DT_VARIANT, "variant", None),
    _dt(DataType.DT_UINT32, "uint32", np.uint32),
    _dt(DataType.DT_UINT64, "uint64", np.uint64),
    _ml(DataType.DT_FLOAT8_E5M2, "float8_e5m2", 1),
    _ml(DataType.DT_FLOAT8_E4M3FN, "float8_e4m3fn", 1),
    _ml(DataType.DT_FLOAT8_E4M3FNUZ, "float8_e4m3fnuz", 1),
    _ml(DataType.DT_FLOAT8_E4M3B11FNUZ, "float8_e4m3b11fnuz", 1),
    _ml(DataType.DT_FLOAT8_E5M2FNUZ, "float8_e5m2fnuz", 1),
    _ml(DataType.DT_INT4, "int4", 1),
    _ml(DataType.DT_UINT4, "uint4", 1),
    _ml(DataType.DT_INT2, "int2", 1),
    _ml(DataType.DT_UINT2, "uint2", 1),
    _ml(DataType.DT_FLOAT4_E2M1FN, "float4_e2m1fn", 1),
]

REF_OFFSET = 100  # DT_X_REF = DT_X + 100 (types.proto)
_ALL += [DType(f"{d.name}_ref", d.as_datatype_enum + REF_OFFSET, d._numpy, d.is_quantized, d.itemsize,
               d.is_fixed_size) for d in list(_ALL)]

BY_ENUM: dict[int, DType] = {d.as_datatype_enum: d for d in _ALL}
BY_NAME: dict[str, DType] = {d.name: d for d in _ALL}
# numpy -> TF for writing: the first DType claiming a numpy type wins (quantized types never do);
# ml_dtypes' types join when resolved (_ml_dtype), at the latest when ml_dtypes is imported and
# as_dtype meets a type not found here.
_BY_NUMPY: dict[np.dtype[Any], DType] = {}
for _d in _ALL:
    if isinstance(_d._numpy, np.dtype) and not _d.is_quantized and not _d.is_ref:
        _BY_NUMPY.setdefault(_d._numpy, _d)
_ML_NAMES = [d.name for d in _ALL if isinstance(d._numpy, str) and not d.is_ref]


def _by_numpy(np_dtype: np.dtype[Any]) -> DType | None:
    found = _BY_NUMPY.get(np_dtype)
    if found is None and len(_ML_RESOLVED) < len(_ML_NAMES) and "ml_dtypes" in sys.modules:
        for name in _ML_NAMES:  # a dtype of ml_dtypes can only exist once it is imported
            _ml_dtype(name)
        found = _BY_NUMPY.get(np_dtype)
    return found

STRING = BY_NAME["string"]
_REAL = {"complex64": BY_NAME["float32"], "complex128": BY_NAME["float64"]}

DTypeLike = DType | str | int | np.dtype[Any] | type


def from_enum(value: int, where: str = "") -> DType:
    """The :class:`DType` for a stored DataType code."""
    try:
        return BY_ENUM[value]
    except KeyError:
        prefix = f"{where}: " if where else ""
        raise UnsupportedError(f"{prefix}unknown DataType enum value {value}") from None


def as_dtype(value: DTypeLike) -> DType:
    """Convert a TF name (``"float32"``, ``"qint8"``), enum code, numpy dtype or DType.

    Strings (numpy ``object``, ``str_`` or ``bytes_`` dtypes) map to ``string``.

    Examples
    --------
    >>> as_dtype("bfloat16").name, as_dtype(np.int8).name, as_dtype(1).name, as_dtype("U3").name
    ('bfloat16', 'int8', 'float32', 'string')
    """
    if isinstance(value, DType):
        return value
    if isinstance(value, np.dtype):
        found = _by_numpy(value)  # fast path: the common native dtypes
        if found is not None:
            return found
    if isinstance(value, str) and value in BY_NAME:
        return BY_NAME[value]
    if isinstance(value, int) and not isinstance(value, bool):
        return from_enum(value)
    try:
        np_dtype = np.dtype(cast(Any, value))
    except TypeError:
        raise InvalidArgumentError(f"not a dtype tfckpt knows: {value!r}") from None
    if np_dtype.kind in "OUS":
        return STRING
    found = _by_numpy(np_dtype.newbyteorder("<") if np_dtype.itemsize > 1 else np_dtype)
    if found is None:
        raise InvalidArgumentError(f"numpy dtype {np_dtype} has no TensorFlow equivalent")
    return found

