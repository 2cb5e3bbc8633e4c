"""``tf.dtypes`` for :mod:`tfckpt.compat`: TensorFlow-shaped dtype objects over tfckpt's table.

A :class:`DType` here is the :class:`tfckpt.DType` of the same code seen as TensorFlow shows
it: ``as_numpy_dtype`` is the numpy scalar *type* (``np.float32``, ``ml_dtypes.bfloat16``), so
``dt.as_numpy_dtype(0)`` makes a scalar; ``repr`` is ``tf.float32``, ``str`` ``<dtype: 'float32'>``;
:func:`as_dtype` takes TF's vocabulary (``"float"`` is float32, ``float`` the Python type
too, ``"double"``, ``"half"``) and raises ``TypeError`` for anything else. Equality and hashing
follow TF: equal to anything naming the same type (another DType, a TF name, a DataType code,
a numpy type or dtype, an array), hashed by the DataType code.

Differences from TensorFlow: the quantized types' ``as_numpy_dtype`` is their storage integer
type (``np.int8`` for ``qint8``; TF has a one-field structured dtype), the type tfckpt returns
their values as; ``resource`` and ``variant`` have ``None`` (TF raises ``KeyError``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes as tfckpt_dtypes
from ..errors import TfckptError
from .namespace import missing

__all__ = ["QUANTIZED_DTYPES", "DType", "as_dtype"]


class DType:
    """TensorFlow's ``tf.DType`` for one DataType code (one instance per code; see :func:`as_dtype`).

    Examples
    --------
    >>> from tfckpt.compat import tf
    >>> tf.float32, tf.float32.as_numpy_dtype is np.float32, tf.float32 == "float32", tf.float32 == np.float32
    (tf.float32, True, True, True)
    """

    __slots__ = ("_dtype",)

    def __init__(self, dtype: tfckpt_dtypes.DType) -> None:
        self._dtype = dtype

    @property
    def name(self) -> str:
        return self._dtype.name

    @property
    def as_datatype_enum(self) -> int:
        return self._dtype.as_datatype_enum

    @property
    def as_numpy_dtype(self) -> Any:
        """The numpy scalar type (``np.float32``); ``None`` for ``resource`` and ``variant``."""
        np_dtype = self._dtype.as_numpy_dtype
        return None if np_dtype is None else np_dtype.type

    @property
    def is_quantized(self) -> bool:
        return self._dtype.is_quantized

    @property
    def is_bool(self) -> bool:
        return self._dtype.is_bool

    @property
    def is_complex(self) -> bool:
        return self._dtype.is_complex

    @property
    def is_floating(self) -> bool:
        return self._dtype.is_floating

    @property
    def is_integer(self) -> bool:
        return self._dtype.is_integer

    @property
    def is_unsigned(self) -> bool:
        return self._dtype.is_unsigned

    @property
    def size(self) -> int:
        return self._dtype.size

    @property
    def min(self) -> Any:
        return self._dtype.min

    @property
    def max(self) -> Any:
        return self._dtype.max

    @property
    def base_dtype(self) -> DType:
        return _BY_ENUM[self._dtype.base_dtype.as_datatype_enum]

    @property
    def real_dtype(self) -> DType:
        return _BY_ENUM[self._dtype.real_dtype.as_datatype_enum]

    def __eq__(self, other: object) -> bool:
        if other is None:
            return False
        try:
            return self.as_datatype_enum == as_dtype(other).as_datatype_enum
        except TypeError:
            return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return self.as_datatype_enum

    def __repr__(self) -> str:
        return f"tf.{self.name}"

    def __str__(self) -> str:
        return f"<dtype: {self.name!r}>"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return as_dtype, (self.name,)


_BY_ENUM = {code: DType(dtype) for code, dtype in tfckpt_dtypes.BY_ENUM.items()}
# TF's names beyond the canonical ones, and the Python types it maps.
_ALIASES: dict[Any, int] = {"half": 19, "float": 1, "double": 2, "half_ref": 119, "float_ref": 101,
                            "double_ref": 102, float: 1, bool: 10, object: 7}


def as_dtype(type_value: Any) -> DType:
    """TensorFlow's ``tf.as_dtype``: a DType, TF name, DataType code, numpy type or dtype, or
    anything with a ``.dtype``; ``TypeError`` for anything else.

    Examples
    --------
    >>> as_dtype("float"), as_dtype(np.int8), as_dtype(2), as_dtype(float)
    (tf.float32, tf.int8, tf.float64, tf.float32)
    """
    code = getattr(type_value, "as_datatype_enum", None)  # a DType of compat, tfckpt or TensorFlow
    if isinstance(code, int) and code in _BY_ENUM:
        return _BY_ENUM[code]
    try:
        alias = _ALIASES.get(type_value)
    except TypeError:  # unhashable
        alias = None
    if alias is not None and not isinstance(type_value, int):
        return _BY_ENUM[alias]
    if isinstance(type_value, (str, int, np.dtype)) and not isinstance(type_value, bool):
        if not isinstance(type_value, str) or type_value in tfckpt_dtypes.BY_NAME:
            return _of(type_value)
    elif isinstance(type_value, type) and issubclass(type_value, np.generic):
        return _of(type_value)
    elif hasattr(type_value, "dtype") and not isinstance(type_value, type):
        return _of(np.dtype(type_value.dtype))
    raise TypeError(f"Cannot convert {type_value!r} to a TensorFlow DType")


def _of(value: Any) -> DType:
    try:
        return _BY_ENUM[tfckpt_dtypes.as_dtype(value).as_datatype_enum]
    except TfckptError:
        raise TypeError(f"Cannot convert {value!r} to a TensorFlow DType") from None


QUANTIZED_DTYPES = frozenset(dtype for dtype in _BY_ENUM.values() if dtype.is_quantized)

# The constants, under TF's names and aliases (tf.float32, tf.half, ...).
_CONSTANTS = {dtype.name: dtype for dtype in _BY_ENUM.values()}
_CONSTANTS.update(half=_BY_ENUM[19], double=_BY_ENUM[2])
CONSTANTS: dict[str, DType] = dict(_CONSTANTS)  # for the namespaces that carry them too (tf.float32)


# Served from here rather than put in globals(): `bool`, `float` and `object` must stay the builtins.
def __getattr__(name: str) -> DType:
    if name in CONSTANTS:
        return CONSTANTS[name]
    missing("tf.dtypes", name)


def __dir__() -> list[str]:
    return sorted([*globals(), *CONSTANTS])
