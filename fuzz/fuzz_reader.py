"""Coverage-guided fuzzing of tfckpt's parsers with atheris (libFuzzer for Python).

    pip install atheris
    python fuzz/fuzz_reader.py -atheris_runs=2000000            # the long run
    python fuzz/fuzz_reader.py fuzz/corpus -max_total_time=3600  # keep a corpus between runs

Each input is split into an index file and a data file (the first two bytes give the index
length), written to a RAM-backed temporary directory and read completely: open, list, every
tensor, the object graph. The only acceptable failures are tfckpt errors; anything else (an
IndexError, struct.error, DecodeError, MemoryError, RecursionError, ...) is a crash that
libFuzzer reports with the input that caused it. Inputs start from real checkpoints: seed the
corpus directory with tests/fuzz_seeds (made by `python fuzz/fuzz_reader.py --make-seeds`).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import atheris
import numpy as np

with atheris.instrument_imports(include=["tfckpt"]):  # coverage feedback from tfckpt only
    import tfckpt
    from tfckpt.bundle.entry import TensorInfo, peek_dtype_shape
    from tfckpt.bundle.graph import ObjectGraph
    from tfckpt.errors import TfckptError
    from tfckpt.table import TableBuilder

SCRATCH = tempfile.mkdtemp(prefix="tfckpt-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
PREFIX = os.path.join(SCRATCH, "ck")


def read_everything(prefix: str, verify: bool = True) -> None:
    with tfckpt.load_checkpoint(prefix, verify_checksums=verify) as reader:
        reader.get_variable_to_shape_map()
        reader.debug_string()
        for info in reader.infos():
            try:
                reader[info.name]
            except tfckpt.UnsupportedError:
                pass
        if reader.object_graph is not None:
            reader.nested()


def structured_index(data: bytes) -> tuple[bytes, bytes]:
    """A *valid* table (correct block CRCs) of fuzzed entries, so that the fuzzer gets past the
    table's checksums to the entry, slice, string and object-graph parsers."""
    provider = atheris.FuzzedDataProvider(data)
    items = {b"": provider.ConsumeBytes(provider.ConsumeIntInRange(0, 16))}
    for _ in range(provider.ConsumeIntInRange(0, 8)):
        key = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 12))
        items[key] = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 64))
    sink = io.BytesIO()
    table = TableBuilder(sink, block_size=provider.ConsumeIntInRange(1, 512))
    for key in sorted(items):
        table.add(key, items[key])
    table.finish()
    return sink.getvalue(), provider.ConsumeBytes(4096)


def test_one_input(data: bytes) -> None:
    if data[:1] == b"S":  # structured: fuzzed entries inside a valid table
        index, payload = structured_index(data[1:])
        body = data[1:]
    else:  # raw: fuzzed index and data files
        split = int.from_bytes(data[:2], "little") if len(data) >= 2 else 0
        body = data[2:]
        index, payload = body[:split], body[split:]
    with open(PREFIX + ".index", "wb") as f:
        f.write(index)
    with open(PREFIX + ".data-00000-of-00001", "wb") as f:
        f.write(payload)
    for verify in (True, False):
        try:
            read_everything(PREFIX, verify)
        except TfckptError:
            pass
    # The entry and object-graph decoders on their own, with the raw bytes.
    try:
        TensorInfo.decode("k", body, "fuzz")
    except TfckptError:
        pass
    peek_dtype_shape(body)
    try:
        ObjectGraph.decode(body, "fuzz").paths()
    except TfckptError:
        pass


def make_seeds(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    sources = {
        "numbers": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.int64(3)},
        "strings": {"s": np.array([b"", b"ab", b"x" * 130], dtype=object)},
        "object_graph": None,
    }
    for name, tensors in sources.items():
        prefix = os.path.join(SCRATCH, name)
        if tensors is None:
            tfckpt.Checkpoint(a={"b": np.ones(2)}).write(prefix)
        else:
            tfckpt.save(tensors, prefix)
        index = Path(prefix + ".index").read_bytes()
        payload = Path(prefix + ".data-00000-of-00001").read_bytes()
        (directory / name).write_bytes(len(index).to_bytes(2, "little") + index + payload)
        (directory / f"{name}-structured").write_bytes(b"S" + index + payload)


if __name__ == "__main__":
    if "--make-seeds" in sys.argv:
        make_seeds(Path(__file__).parent.parent / "tests" / "fuzz_seeds")
        sys.exit(0)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
