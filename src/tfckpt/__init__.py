"""tfckpt: read and write TensorFlow checkpoints without TensorFlow.

Examples
--------
>>> import tfckpt, numpy as np, tempfile, os
>>> prefix = tfckpt.save({"dense/kernel": np.ones((2, 2), np.float32)},
...                      os.path.join(tempfile.mkdtemp(), "model.ckpt"))
>>> tfckpt.list_variables(prefix)
[('dense/kernel', [2, 2])]
"""

from . import distributed
from .api import list_variables, load, load_checkpoint, load_variable, merge_checkpoints, resolve_prefix, save
from .bundle.entry import TensorInfo
from .bundle.reader import BundleReader as CheckpointReader
from .bundle.slices import TensorSlice
from .bundle.writer import BundleWriter as CheckpointWriter
from .checkpoint import Checkpoint, CheckpointLoadStatus, CheckpointMismatchError
from .convert import convert as convert_checkpoint
from .diff import diff_checkpoints
from .dtypes import DataType, DType, as_dtype
from .errors import (
    CheckpointReplacedError,
    ChecksumError,
    CorruptionError,
    InvalidArgumentError,
    NotFoundError,
    TfckptError,
    UnsupportedError,
)
from .manager import CheckpointManager
from .saver import Saver
from .state import (
    CheckpointState,
    checkpoint_exists,
    get_checkpoint_mtimes,
    get_checkpoint_state,
    latest_checkpoint,
    remove_checkpoint,
    update_checkpoint_state,
)
from .variables import Variable
from .verify import verify_checkpoint

__version__ = "0.1.0"

__all__ = [
    "Checkpoint",
    "CheckpointLoadStatus",
    "CheckpointManager",
    "CheckpointMismatchError",
    "CheckpointReader",
    "CheckpointReplacedError",
    "CheckpointState",
    "CheckpointWriter",
    "ChecksumError",
    "CorruptionError",
    "DType",
    "DataType",
    "InvalidArgumentError",
    "NotFoundError",
    "Saver",
    "TensorInfo",
    "TensorSlice",
    "TfckptError",
    "UnsupportedError",
    "Variable",
    "as_dtype",
    "checkpoint_exists",
    "convert_checkpoint",
    "diff_checkpoints",
    "distributed",
    "get_checkpoint_mtimes",
    "get_checkpoint_state",
    "latest_checkpoint",
    "list_variables",
    "load",
    "load_checkpoint",
    "load_variable",
    "merge_checkpoints",
    "remove_checkpoint",
    "resolve_prefix",
    "save",
    "update_checkpoint_state",
    "verify_checkpoint",
]
