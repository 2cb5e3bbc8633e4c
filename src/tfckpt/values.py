"""Tensors of other frameworks (PyTorch, JAX) to numpy arrays and back.

Every writing entry point (``save``, ``CheckpointWriter.add``, ``Checkpoint``, ``Saver``,
``Variable``) passes each value through :func:`to_numpy` first, so all of them accept the same
values: a torch tensor of any dtype (bfloat16 and float8 as ``ml_dtypes``' types, the bytes
unchanged), with ``requires_grad``, in any memory layout, on any device (copied to host memory);
a JAX array (its dtypes are numpy's and ``ml_dtypes``' already). :func:`from_numpy` is the other
direction, for ``load(framework=...)``.

Neither framework is imported by tfckpt: a value is recognised by the module its type comes
from, and only then is that (already imported) module used.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .errors import InvalidArgumentError

__all__ = ["FRAMEWORKS", "assign_into", "check_framework", "from_numpy", "is_plain_data", "is_restorable", "is_tensor",
           "numpy_dtype_of", "to_numpy"]

# ``framework=`` names, as safetensors spells them, and the framework each means.
FRAMEWORKS = {"numpy": "numpy", "np": "numpy", "pt": "torch", "torch": "torch", "pytorch": "torch",
              "jax": "jax", "flax": "jax"}

# torch dtypes numpy has no type for: the name of an integer torch dtype of the same width. The
# ml_dtypes type of the same name has the same bits; the bytes are reinterpreted, never converted.
_TORCH_VIEWED = {"bfloat16": "int16", "float8_e4m3fn": "uint8", "float8_e4m3fnuz": "uint8", "float8_e5m2": "uint8",
                 "float8_e5m2fnuz": "uint8"}
# torch dtypes numpy stores natively (``Tensor.numpy()`` shares their memory).
_TORCH_NATIVE = ("bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
                 "float16", "float32", "float64", "complex64", "complex128")


def _root_module(value: Any) -> str:
    return type(value).__module__.partition(".")[0]


def _torch_module(value: Any) -> Any:
    """The torch module if ``value`` is a torch tensor (torch is imported if it exists)."""
    if _root_module(value) != "torch":
        return None
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(value, torch.Tensor) else None


def _jax_module(value: Any) -> Any:
    if _root_module(value) not in ("jax", "jaxlib"):
        return None
    jax = sys.modules.get("jax")
    return jax if jax is not None and isinstance(value, jax.Array) else None


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor or a JAX array."""
    return _torch_module(value) is not None or _jax_module(value) is not None


def _numbers(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_numbers(item) for item in value)
    return isinstance(value, (bool, int, float, complex, np.number, np.bool_))


def is_plain_data(value: Any) -> bool:
    """Python and numpy numbers, and non-empty (nested) lists or tuples of them: values that
    are saved as tensors but, being immutable, cannot be restored into."""
    return _numbers(value) and (not isinstance(value, (list, tuple)) or bool(value))


def is_restorable(value: Any) -> bool:
    """Whether a restore can assign into ``value`` in place (torch tensors; JAX arrays are immutable)."""
    return _torch_module(value) is not None


def _torch_dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _ml_dtype(name: str) -> np.dtype[Any]:
    import ml_dtypes  # here, not at the top: seconds to import, needed only for torch's types

    dtype: np.dtype[Any] = np.dtype(getattr(ml_dtypes, name))
    return dtype


def numpy_dtype_of(value: Any) -> np.dtype[Any]:
    """The numpy dtype a torch tensor's values become (see :func:`to_numpy`)."""
    name = _torch_dtype_name(value.dtype)
    if name in _TORCH_VIEWED:
        return _ml_dtype(name)
    if name in _TORCH_NATIVE:
        return np.dtype(name)
    raise InvalidArgumentError(f"torch dtype {name} has no TensorFlow equivalent: convert the tensor first "
                               f"(e.g. .to(torch.float32))")


def _torch_to_numpy(torch: Any, tensor: Any, what: str) -> np.ndarray:
    if tensor.layout != torch.strided:
        raise InvalidArgumentError(f"{what}: a {tensor.layout} torch tensor cannot be saved; pass .to_dense()")
    if tensor.device.type == "meta":
        raise InvalidArgumentError(f"{what}: a torch tensor on the meta device has no values to save")
    try:
        dtype = numpy_dtype_of(tensor)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from None
    # detach(): values only, so requires_grad does not matter; resolve_*: lazy conjugation or
    # negation flags made real; cpu(): a copy from an accelerator, the tensor itself on the CPU.
    host = tensor.detach().resolve_conj().resolve_neg().cpu()
    name = _torch_dtype_name(tensor.dtype)
    if name in _TORCH_VIEWED:
        carrier = _TORCH_VIEWED[name]
        out: np.ndarray = host.view(getattr(torch, carrier)).numpy().view(dtype)
        return out
    out = host.numpy()
    return out


def to_numpy(value: Any, what: str) -> Any:
    """``value`` as a numpy array if it is a torch tensor or JAX array, else ``value`` itself.

    The result shares the tensor's memory where it can (CPU torch tensors of every dtype; JAX
    arrays on the CPU as JAX allows), so nothing is copied before the bytes are written.
    ``what`` names the value in error messages.
    """
    torch = _torch_module(value)
    if torch is not None:
        return _torch_to_numpy(torch, value, what)
    if _jax_module(value) is not None:
        try:
            return np.asarray(value)
        except Exception as exc:  # noqa: BLE001 - e.g. a tracer inside jit has no values yet
            raise InvalidArgumentError(f"{what}: a JAX value without concrete values ({type(value).__name__}) "
                                       f"cannot be saved: {exc}") from None
    return value


def assign_into(target: Any, value: np.ndarray) -> None:
    """Copy ``value`` (of the numpy dtype :func:`numpy_dtype_of` gives) into a torch tensor in place."""
    torch = _torch_module(target)
    source = from_numpy(np.ascontiguousarray(value), "torch", "restore")
    with torch.no_grad():
        target.copy_(source)


def check_framework(framework: str) -> str:
    """The framework (``"numpy"``, ``"torch"``, ``"jax"``) a ``framework=`` name means."""
    if framework not in FRAMEWORKS:
        raise InvalidArgumentError(f"framework={framework!r} is not one of {', '.join(map(repr, FRAMEWORKS))}")
    return FRAMEWORKS[framework]


def from_numpy(array: np.ndarray, framework: str, what: str) -> Any:
    """``array`` as a tensor of ``framework`` (a :data:`FRAMEWORKS` value), sharing its memory
    where the framework allows.

    String arrays stay numpy object arrays (neither framework has string tensors). torch has
    no read-only tensors, so a read-only array is copied: a tensor sharing read-only pages would
    let a write in place stop the process (SIGSEGV). :func:`tfckpt.load` hands writable
    copy-on-write views of a mapping, which torch shares without a copy.
    """
    if framework == "numpy" or array.dtype.kind == "O":
        return array
    if framework == "jax":
        import jax.numpy as jnp  # optional: only when asked for

        return jnp.asarray(array)
    import torch  # optional: only when asked for

    by_numpy = {_ml_dtype(name): name for name in _TORCH_VIEWED}
    name = by_numpy.get(array.dtype)
    if name is None and array.dtype.name not in _TORCH_NATIVE:
        raise InvalidArgumentError(f"{what}: dtype {array.dtype} has no torch equivalent; load it with "
                                   f"framework='numpy' (or 'jax')")
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    elif not array.flags.writeable:
        array = array.copy()
    if name is not None:
        return torch.from_numpy(array.view(_TORCH_VIEWED[name])).view(getattr(torch, name))
    return torch.from_numpy(array)
