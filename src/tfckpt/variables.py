"""A named, mutable, numpy-backed variable: what Saver and Checkpoint save and restore."""

from __future__ import annotations

from typing import Any

import numpy as np

from .dtypes import STRING, DType, DTypeLike, as_dtype
from .errors import InvalidArgumentError, TfckptError
from .values import to_numpy

__all__ = ["Variable", "as_int_scalar"]


def _to_array(value: Any, dtype: DType | None, what: str) -> np.ndarray:
    """An owned, C-contiguous copy of ``value`` as ``dtype`` (strings as object arrays of bytes)."""
    if isinstance(value, Variable):
        value = value._value
    array = np.asarray(to_numpy(value, what))
    if dtype is None:
        try:
            dtype = as_dtype(array.dtype)
        except TfckptError as exc:
            raise InvalidArgumentError(f"{what}: {exc}") from None
    if dtype == STRING:
        if array.dtype.kind not in "OUS":
            raise InvalidArgumentError(f"{what}: a string variable needs str/bytes values, got {array.dtype}")
        out = np.empty(array.shape, dtype=object)
        for index, item in np.ndenumerate(array):
            if isinstance(item, str):
                item = item.encode("utf-8")
            elif not isinstance(item, (bytes, np.bytes_)):
                raise InvalidArgumentError(f"{what}: string values must be bytes or str, found {type(item).__name__}")
            out[index] = bytes(item)
        return out
    if dtype.as_numpy_dtype is None:
        raise InvalidArgumentError(f"{what}: variables of dtype {dtype.name} are not supported")
    if array.dtype.kind in "OUS":
        raise InvalidArgumentError(f"{what}: cannot hold {array.dtype} values as {dtype.name}")
    return np.array(array, dtype=dtype.as_numpy_dtype, order="C", copy=True)


class Variable:
    """A named numpy value that can be saved, restored and assigned, like ``tf.Variable``.

    Parameters
    ----------
    initial_value:
        Anything ``numpy.asarray`` accepts, or a torch tensor or JAX array (any dtype, e.g.
        ``torch.bfloat16``); it is copied.
    name:
        The name the variable is saved under when it is given to a :class:`Saver` in a list.
        Unlike TensorFlow's, ``.name`` has no ``:0`` suffix.
    dtype:
        A TF dtype name, numpy dtype or :class:`DType`; inferred from the value if omitted.

    Examples
    --------
    >>> v = Variable([1.0, 2.0], name="v", dtype="float32")
    >>> v.assign([3, 4]).numpy()
    array([3., 4.], dtype=float32)
    >>> v.shape, v.dtype.name
    ((2,), 'float32')
    """

    def __init__(self, initial_value: Any, name: str | None = None, dtype: DTypeLike | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidArgumentError(f"a variable name must be a non-empty string, got {name!r}")
        self._name = name
        what = f"variable {name!r}" if name else "variable"
        self._dtype = as_dtype(dtype) if dtype is not None else None
        self._value = _to_array(initial_value, self._dtype, what)
        if self._dtype is None:
            self._dtype = as_dtype(self._value.dtype)

    @property
    def name(self) -> str | None:
        """The name given at creation (``None`` if none)."""
        return self._name

    @property
    def shape(self) -> tuple[int, ...]:
        """The value's shape, fixed at creation."""
        return tuple(self._value.shape)

    @property
    def dtype(self) -> DType:
        """The :class:`~tfckpt.DType` the value is saved as."""
        assert self._dtype is not None
        return self._dtype

    def numpy(self) -> np.ndarray:
        """A copy of the current value (later assignments do not change it)."""
        return self._value.copy()

    def value(self) -> np.ndarray:
        """A read-only view of the current value, without copying."""
        view = self._value.view()
        view.flags.writeable = False
        return view

    def assign(self, value: Any) -> Variable:
        """Replace the value in place; the shape must match and the dtype be compatible.

        Values are cast as numpy's ``same_kind`` rule allows (e.g. ints into a float
        variable, float64 into float32), not across kinds (floats into an int variable).
        """
        what = f"assign to variable {self._name!r}" if self._name else "assign to variable"
        incoming = value._value if isinstance(value, Variable) else np.asarray(to_numpy(value, what))
        if incoming.shape != self._value.shape:
            raise InvalidArgumentError(f"{what}: shape {list(incoming.shape)} does not match the "
                                       f"variable's shape {list(self._value.shape)}")
        if self.dtype == STRING:
            self._value[...] = _to_array(incoming, STRING, what)
            return self
        if incoming.dtype.kind in "OUS" or not np.can_cast(incoming.dtype, self._value.dtype, "same_kind"):
            raise InvalidArgumentError(f"{what}: cannot assign {incoming.dtype} values to a "
                                       f"{self.dtype.name} variable")
        self._value[...] = incoming
        return self

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.array(self._value, dtype=dtype, copy=True) if dtype is not None or copy else self.value()

    def __repr__(self) -> str:
        return f"<tfckpt.Variable {self._name!r} shape={self.shape} dtype={self.dtype.name}>"


def as_int_scalar(value: Any, what: str) -> int:
    """An integer scalar (a Python or numpy int, a 0-d integer array or :class:`Variable`),
    e.g. a ``global_step``; anything else is an :class:`InvalidArgumentError` naming ``what``."""
    if isinstance(value, Variable):
        value = value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        array = np.asarray(None)
    if array.shape != () or array.dtype.kind not in "iu":
        raise InvalidArgumentError(f"{what} must be an integer scalar, got {value!r}")
    return int(array)
