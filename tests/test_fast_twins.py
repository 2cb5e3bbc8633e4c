"""The fast twins (ARCHITECTURE.md "Fast twins"): each vectorised module of a per-entry
reference path, tested here against its reference, one section per twin. Each property draws
ordinary and hostile input; the twin must give the reference's result, and where the reference
refuses, refuse too (or leave the row to the reference)."""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from timing import confirmed, cpu_seconds

import tfckpt
from tfckpt.bundle import fast_plan, payload, plan
from tfckpt.bundle.entry import TensorInfo, peek
from tfckpt.bundle.fast_entries import EntryColumns, decode_plain_many, peek_many
from tfckpt.bundle.fast_payload import cut_many
from tfckpt.bundle.fast_reads import QUICK_MAX_BYTES
from tfckpt.bundle.store import BundleStore
from tfckpt.coding import crc32c, encode_varint, mask
from tfckpt.dtypes import BY_NAME, as_dtype
from tfckpt.errors import ChecksumError, CorruptionError, TfckptError
from tfckpt.table.builder import TableBuilder
from tfckpt.table.fast_layout import MAX_KEY_WIDTH, layout_data_blocks

F32 = as_dtype("float32")
VARINT_EDGES = [0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**28, 2**35, 2**63 - 1]


# -- bundle/fast_entries: peek_many == entry.peek, decode_plain_many == TensorInfo.decode,
#    EntryColumns.encode == TensorInfo.encode ------------------------------------------------

entry_fields = st.tuples(st.sampled_from(["float32", "int64", "bool", "string", "bfloat16", "complex128"]),
                         st.lists(st.integers(0, 70_000), max_size=4).map(tuple),
                         st.integers(0, (1 << 31) - 1), st.integers(0, (1 << 63) - 1), st.integers(0, (1 << 63) - 1),
                         st.integers(0, (1 << 32) - 1))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(entry_fields, st.integers(-1, 60), st.integers(0, 255)), min_size=1, max_size=40))
def test_the_vectorised_entry_decoder_agrees_with_the_record_decoder(rows: list[Any]) -> None:
    """decode_plain_many (bulk reads) on entries as writers make them (every field at its
    extremes: 9-byte varints, int32/int64 limits) decodes each; on damaged ones (a byte
    replaced, or bytes appended) whatever it accepts, TensorInfo.decode reads the same way."""
    values, intact = [], []
    for (dtype, shape, shard, offset, size, crc), at, byte in rows:
        value = TensorInfo.of_data("t", tfckpt.as_dtype(dtype), shape, shard, offset, size, crc).encode()
        intact.append(at < 0)
        if at >= len(value):
            value += bytes([byte])
        elif at >= 0:
            value = value[:at] + bytes([byte]) + value[at + 1:]
        values.append(value)
    ends = np.cumsum([len(v) for v in values])
    decoded = decode_plain_many(b"".join(values), ends - [len(v) for v in values], ends)
    for i, value in enumerate(values):
        if intact[i]:
            assert decoded.plain[i], value.hex()
        if not decoded.plain[i]:
            continue
        try:
            info = TensorInfo.decode("t", value, "t")
        except TfckptError:
            raise AssertionError(f"accepted in bulk, refused alone: {value.hex()}") from None
        kind = decoded.kinds[decoded.kind[i]]
        assert kind is not None
        assert (kind[0], kind[1], int(decoded.shard_id[i]), int(decoded.offset[i]), int(decoded.size[i]),
                int(decoded.masked_crc32c[i])) == (info.dtype, info.shape, info.shard_id, info.offset, info.size,
                                                   info.masked_crc32c), value.hex()
        assert not info.slices


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.sampled_from(["float32", "int64", "string", "bfloat16"]),
              st.lists(st.integers(0, 2**40), max_size=20).map(tuple), st.integers(0, 2**40)),
    st.binary(max_size=40)), max_size=30))
def test_bulk_peek_agrees_with_peek(rows: list[Any]) -> None:
    """peek_many (listing) finds, for every entry at once, what peek finds for each: heads of
    one to many 8-byte words (up to 20 dimensions of up to 2^40), entries cut short, junk,
    empty values, and an entry ending at the very end of the buffer."""
    values = []
    for row in rows:
        if isinstance(row, bytes):
            values.append(row)
        else:
            dtype, shape, offset = row
            values.append(TensorInfo.of_data("t", tfckpt.as_dtype(dtype), shape, 0, offset, 4, 7).encode())
    cut = [v[:n] for v in values for n in (3, 4, 8, len(v) - 1) if 0 <= n < len(v)]
    for entries in (values, cut):
        ends = np.cumsum([len(v) for v in entries], dtype=np.int64)
        which, kinds = peek_many(b"".join(entries), ends - [len(v) for v in entries], ends)
        assert [kinds[w] for w in which] == [peek(v) for v in entries]


def test_the_vectorised_entry_decoder_leaves_out_of_range_fields_to_protobuf() -> None:
    """A shard_id of 2^31 (negative as int32) or an offset of 2^63 (negative as int64) is the
    record decoder's to refuse, never decoded in bulk as a large positive number."""
    head = TensorInfo("t", tfckpt.as_dtype("float32"), (2,)).encode()
    values = [head + b"\x18" + encode_varint(1 << 31), head + b"\x20" + encode_varint(1 << 63),
              head + b"\x18" + encode_varint((1 << 31) - 1), head + b"\x28" + encode_varint((1 << 63) - 1)]
    ends = np.cumsum([len(v) for v in values])
    decoded = decode_plain_many(b"".join(values), ends - [len(v) for v in values], ends)
    assert decoded.plain.tolist() == [False, False, True, True]
    assert int(decoded.shard_id[2]) == (1 << 31) - 1 and int(decoded.size[3]) == (1 << 63) - 1
    with pytest.raises(CorruptionError):
        TensorInfo.decode("t", values[0], "t")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(n for n in BY_NAME if not BY_NAME[n].is_ref)),
                          st.lists(st.integers(0, 2**15), max_size=3),
                          st.one_of(st.sampled_from(VARINT_EDGES), st.integers(0, 2**63 - 1)),
                          st.one_of(st.sampled_from(VARINT_EDGES), st.integers(0, 2**63 - 1)),
                          st.one_of(st.just(0), st.integers(0, 2**32 - 1))), max_size=40),
       st.sampled_from([0, 1, 127, 128, 2**31 - 1]))
def test_entry_columns_encode_what_records_encode(rows: list[tuple[str, list[int], int, int, int]], shard: int) -> None:
    """The writer's columns of small tensors encode, all rows at once, the bytes each record's
    encode() makes (itself checked against protobuf above): every varint length, zero fields
    left out, heads of any dtype and shape, in any data file."""
    columns = EntryColumns([f"t{i}" for i in range(len(rows))], [BY_NAME[r[0]] for r in rows],
                           [tuple(r[1]) for r in rows], shard, np.array([r[2] for r in rows], dtype=np.int64),
                           np.array([r[3] for r in rows], dtype=np.int64), np.array([r[4] for r in rows], dtype=np.uint32))
    values, lengths = columns.encode()
    records = [TensorInfo(f"t{n}", BY_NAME[r[0]], tuple(r[1]), shard, r[2], r[3], r[4]) for n, r in enumerate(rows)]
    assert [info.encode() for info in records] == [
        values[end - n:end].tobytes() for end, n in zip(np.cumsum(lengths).tolist(), lengths.tolist())]



# -- bundle/fast_payload: cut_many == payload.cut_fixed -------------------------------------

CUT_DTYPES = ["float32", "int64", "bool", "uint8", "int16", "float16", "bfloat16", "complex64", "float64"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(CUT_DTYPES), st.lists(st.integers(0, 3), max_size=3).map(tuple),
                          st.integers(0, 9), st.booleans()), max_size=30),
       st.booleans(), st.randoms(use_true_random=False))
def test_cut_many_cuts_what_cut_fixed_cuts(tensors: list[tuple[str, tuple[int, ...], int, bool]], verify: bool,
                                           random: Any) -> None:
    """Tensors of any fixed-size dtype and shape (scalars, empty ones) packed into one buffer
    at any alignment (0-9 bytes between them), some with a damaged checksum: cut all at once,
    each comes back with cut_fixed's dtype, shape and values, aligned (a view or a copy); with
    verification, the first damaged tensor raises cut_fixed's ChecksumError and no other."""
    kinds: list[tuple[np.dtype[Any], tuple[int, ...]]] = []
    ats, sizes, crcs, kind, chunks, at = [], [], [], [], [], 0
    for dtype_name, shape, pad, damaged in tensors:
        dtype = tfckpt.as_dtype(dtype_name)
        raw = bytes(random.getrandbits(8) for _ in range(math.prod(shape) * dtype.as_numpy_dtype.itemsize))
        if dtype_name == "bool":
            raw = bytes(b & 1 for b in raw)
        chunks.append(b"\x55" * pad + raw)
        at += pad
        ats.append(at)
        sizes.append(len(raw))
        crcs.append(mask(crc32c(raw)) ^ (1 if damaged else 0))
        kinds.append((dtype.as_numpy_dtype, shape))
        kind.append(len(kinds) - 1)
        at += len(raw)
    buffer = np.frombuffer(b"".join(chunks) + b"\x55" * 3, dtype=np.uint8).copy()

    def reference(i: int) -> np.ndarray:
        dtype_name, shape, _, _ = tensors[i]
        return payload.cut_fixed(buffer, ats[i], shape, tfckpt.as_dtype(dtype_name), False, verify, crcs[i],
                                 lambda: f"tensor {i}", 1000 + ats[i])

    def twin() -> list[np.ndarray]:
        return cut_many(buffer, np.array(ats, dtype=np.int64), np.array(sizes, dtype=np.int64), kinds,
                        np.array(kind, dtype=np.int64), np.array(crcs, dtype=np.uint32), verify, reference)

    if verify and any(bad for _, _, _, bad in tensors):
        with pytest.raises(ChecksumError) as expected:
            for i in range(len(tensors)):
                reference(i)
        with pytest.raises(ChecksumError) as found:
            twin()
        assert str(found.value) == str(expected.value)
        return
    for i, value in enumerate(twin()):
        want = reference(i)
        assert value.dtype == want.dtype and value.shape == want.shape and value.flags.aligned
        assert value.tobytes() == want.tobytes()


# -- bundle/fast_reads: BundleStore.quick_sizes/read_quick == BundleStore.read_many -----------

READ_DTYPES = ["float32", "int64", "bool", "uint8", "float16", "bfloat16", "complex64", "string"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(READ_DTYPES), st.lists(st.integers(0, 4), max_size=2).map(tuple)),
                min_size=1, max_size=25),
       st.sampled_from([0, 1, 5, 1 << 14]), st.one_of(st.none(), st.integers(0, 10**6)), st.booleans())
def test_quick_reads_read_what_read_many_reads(tensors: list[tuple[str, tuple[int, ...]]], large: int,
                                              damage: int | None, verify: bool) -> None:
    """A saved checkpoint of small tensors of many dtypes (strings between them shift the
    alignment; a large one is past the quick limit): quick_sizes accepts exactly the fixed-size
    tensors up to QUICK_MAX_BYTES, and read_quick gives read_many's values (dtype, shape, bytes);
    with a byte of the data file flipped, both raise the same ChecksumError when verifying."""
    rng = np.random.default_rng(len(tensors))
    values: dict[str, Any] = {}
    for i, (dtype_name, shape) in enumerate(tensors):
        if dtype_name == "string":
            values[f"t{i:02d}"] = np.array([b"x" * (i % 3)] * math.prod(shape), dtype=object).reshape(shape)
        else:
            np_dtype = tfckpt.as_dtype(dtype_name).as_numpy_dtype
            values[f"t{i:02d}"] = rng.integers(0, 2, math.prod(shape) * np_dtype.itemsize, dtype=np.uint8) \
                .view(np_dtype).reshape(shape)
    values["zz_large"] = np.ones(large, np.float32)
    with tempfile.TemporaryDirectory() as directory:
        prefix = str(Path(directory) / "ck")
        tfckpt.save(values, prefix)
        if damage is not None:
            data = next(Path(directory).glob("ck.data-*"))
            raw = bytearray(data.read_bytes())
            if raw:
                raw[damage % len(raw)] ^= 0x01
                data.write_bytes(bytes(raw))
        store = BundleStore(prefix, verify_checksums=verify)
        try:
            names = sorted(values)
            infos = [store.info(name) for name in names]
            sizes = store.quick_sizes(names)
            assert sizes == [info.size if info is not None and info.dtype.is_fixed_size
                             and info.size <= QUICK_MAX_BYTES else -1 for info in infos]
            quick = [name for name, size in zip(names, sizes) if size >= 0]
            expected: dict[str, Any] | ChecksumError
            try:
                expected = {info.name: value for info, value in store.read_many(
                    info for info in infos if info is not None and info.name in quick)}
            except ChecksumError as exc:
                expected = exc
            if isinstance(expected, ChecksumError):
                with pytest.raises(ChecksumError) as found:
                    store.read_quick(quick)
                assert str(found.value) == str(expected)
                return
            for name, value in zip(quick, store.read_quick(quick)):
                want = expected[name]
                assert value.dtype == want.dtype and value.shape == want.shape and value.flags.aligned
                assert value.tobytes() == want.tobytes()
        finally:
            store.close()


# -- bundle/fast_plan: plan_spans == plan.plan_fetches ---------------------------------------

def adjacent_runs(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """Entries back to back (or nearly, or overlapping a little) in long runs: the layout of a
    save of many small tensors, where one run spans many fetch limits."""
    layout, shard = [], 0
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, 100))
        for size, step in draw(st.lists(st.tuples(st.integers(0, 64), st.integers(-8, 12)), max_size=80)):
            layout.append((shard, at, size))
            at = max(0, at + size + (step if step < 0 or step > 8 else 0))
        shard += draw(st.integers(0, 1))
    return sorted(layout)


scattered = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5000), st.integers(0, 900)), max_size=60).map(sorted)


@settings(max_examples=400, deadline=None)
@given(st.one_of(scattered, st.composite(adjacent_runs)()), st.integers(0, 600), st.integers(1, 3000))
def test_plan_spans_finds_the_fetches_plan_fetches_finds(layout: list[tuple[int, int, int]], gap: int,
                                                         limit: int) -> None:
    """The array planner used by bulk reads of small tensors keeps the planner's rules (each
    entry in one fetch that holds it, no fetch over the limit unless alone, no hole over the
    gap), and finds the record planner's very fetches: on scattered entries, on long runs of
    adjacent ones cut by the limit many times, and where entries overlap (a hostile index:
    after a cut, bytes an earlier entry covered may be a hole of the next fetch)."""
    infos = [TensorInfo(f"t{i}", F32, (size // 4,), shard, offset, size) for i, (shard, offset, size) in enumerate(layout)]
    tuning = plan.Tuning(gap=gap, limit=limit)
    columns = np.array(layout, dtype=np.int64).reshape(-1, 3)
    spans = fast_plan.plan_spans(columns[:, 0], columns[:, 1], columns[:, 2], tuning)
    assert [i for s in spans for i in range(s.first, s.last)] == list(range(len(layout)))
    for s in spans:
        members = layout[s.first:s.last]
        assert all(shard == s.shard_id and s.start <= offset and offset + size <= s.end for shard, offset, size in members)
        assert s.end - s.start <= limit or len(members) == 1
        covered = s.start
        for _, offset, size in members:
            assert offset - covered <= gap
            covered = max(covered, offset + size)
    expected = [(f.shard_id, f.start, f.end, [int(i.name[1:]) for i in f.entries]) for f in plan.plan_fetches(infos, tuning)]
    assert [(s.shard_id, s.start, s.end, list(range(s.first, s.last))) for s in spans] == expected


def test_plan_spans_checks_the_gap_after_a_cut_in_overlapping_entries() -> None:
    """Found by the property above in CI: entry 0 covers bytes [0, 2); a cut at the limit
    starts a new fetch at entry 1 (offset 1, empty), and entry 2 at offset 2 then lies past a
    hole of one byte, over a gap of 0: a fetch of its own, as the record planner has it."""
    spans = fast_plan.plan_spans(np.zeros(3, np.int64), np.array([0, 1, 2]), np.array([2, 0, 0]),
                                 plan.Tuning(gap=0, limit=1))
    assert [(s.start, s.end, s.first, s.last) for s in spans] == [(0, 2, 0, 1), (1, 1, 1, 2), (2, 2, 2, 3)]


def test_a_run_longer_than_the_limit_costs_a_step_per_fetch_not_per_entry() -> None:
    """Issue 27: 10^6 adjacent 16-byte tensors are one 15 MiB run, longer than the 8 MiB fetch
    limit, which the planner once cut entry by entry in Python (minutes for a load). Here the
    same shape at small scale: 2k to 32k adjacent entries, the limit holding the first 2k, so
    the larger runs are cut 4 to 16 times; CPU time must grow no faster than the count (the
    per-entry cut jumped from numpy's cost to Python's: exponent ~2)."""
    tuning = plan.Tuning(gap=0, limit=2000 * 16)
    counts = [2000, 8000, 32000]

    def exponent() -> float:
        times = []
        for n in counts:
            columns = np.zeros(n, np.int64), np.arange(n, dtype=np.int64) * 16, np.full(n, 16, np.int64)
            times.append(cpu_seconds(lambda columns=columns: fast_plan.plan_spans(*columns, tuning), repeat=3))
        return math.log(max(times[-1], 1e-6) / max(times[0], 1e-6)) / math.log(counts[-1] / counts[0])

    assert confirmed(exponent, lambda k: k <= 1.3) <= 1.3


# -- table/fast_layout: layout_data_blocks == TableBuilder.add, entry by entry ---------------

def _packed(items: list[tuple[bytes, bytes]], block_size: int, *, first: tuple[bytes, bytes] | None = None) -> bytes:
    sink = io.BytesIO()
    builder = TableBuilder(sink, block_size=block_size)
    if first is not None:
        builder.add(*first)
    values = np.frombuffer(b"".join(v for _, v in items), dtype=np.uint8)
    builder.add_packed([k for k, _ in items], values, np.array([len(v) for _, v in items], dtype=np.int64))
    builder.add(b"\xff" * 40, b"after")  # the open last block takes more entries, as add() leaves it
    builder.finish()
    return sink.getvalue()


def _one_by_one(items: list[tuple[bytes, bytes]], block_size: int) -> bytes:
    sink = io.BytesIO()
    builder = TableBuilder(sink, block_size=block_size)
    for key, value in [*items, (b"\xff" * 40, b"after")]:
        builder.add(key, value)
    builder.finish()
    return sink.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=400, unique=True).map(sorted), st.integers(0, 300),
       st.sampled_from([16, 64, 100, 333, 4096, 262144]), st.data())
def test_packed_layout_writes_what_the_builder_writes(keys: list[bytes], value_size: int, block_size: int,
                                                    data: st.DataObject) -> None:
    """The numpy layout of a table's data blocks (table/fast_layout) gives the entry-by-entry
    builder's bytes: any keys (shared prefixes, NULs, 0xFF), values of 0-300 bytes (one- and
    two-byte lengths), block sizes from 16 bytes (a block per entry or two) to TF's 256 KiB;
    and it is the layout that ran, not the fallback, whenever no entry is huge."""
    sizes = data.draw(st.lists(st.integers(0, value_size), min_size=len(keys), max_size=len(keys)))
    items = [(key, bytes([n % 251]) * size) for n, (key, size) in enumerate(zip(keys, sizes))]
    items = [item for item in items if item[0] != b"\xff" * 40 and item[0] < b"\xff" * 40]
    assert _packed(items, block_size) == _one_by_one(items, block_size)
    huge = any(len(k) + len(v) >= 2 * block_size for k, v in items)
    values = np.frombuffer(b"".join(v for _, v in items), dtype=np.uint8)
    laid = layout_data_blocks([k for k, _ in items], values, np.array([len(v) for _, v in items], dtype=np.int64),
                              block_size, 16)
    assert (laid is None) == (huge or not items)


def test_packed_layout_of_many_blocks_and_its_fallbacks() -> None:
    """10^5 entries over ~390 blocks of 4 KiB; keys past the matrix width (2 KiB) and a
    huge value go entry by entry with the same bytes; a builder that already holds entries
    continues entry by entry; keys out of order are refused as add() refuses them."""
    items = [(b"layer_%05d/kernel" % i, bytes([i % 256]) * (i % 9)) for i in range(100_000)]
    assert _packed(items, 4096) == _one_by_one(items, 4096)
    wide = [(b"w" * (MAX_KEY_WIDTH + 1) + b"%03d" % i, b"v") for i in range(50)]
    assert _packed(wide, 4096) == _one_by_one(wide, 4096)
    huge = [(b"a", b"x"), (b"b", b"y" * 9000), (b"c", b"z")]
    assert _packed(huge, 4096) == _one_by_one(huge, 4096)
    assert _packed(items[:500], 4096, first=(b"", b"header")) == _one_by_one([(b"", b"header"), *items[:500]], 4096)
    for keys in ([b"b", b"a"], [b"a", b"a"], [b"ab", b"a"]):
        with pytest.raises(ValueError, match="strictly increasing"):
            TableBuilder(io.BytesIO()).add_packed(keys, np.zeros(0, np.uint8), np.zeros(2, np.int64))
