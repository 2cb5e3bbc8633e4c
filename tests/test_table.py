import io
import random

import pytest
from conftest import optional

from tfckpt import snappy
from tfckpt.errors import ChecksumError, CorruptionError, TfckptError, UnsupportedError
from tfckpt.table import (
    FOOTER_LENGTH,
    BlockBuilder,
    BlockHandle,
    Footer,
    TableBuilder,
    TableReader,
    find_short_successor,
    find_shortest_separator,
    parse_block,
)


class BytesSource:
    """An in-memory ByteSource for table tests."""

    def __init__(self, data: bytes, name: str = "mem.index") -> None:
        self.data = data
        self.name = name

    def size(self) -> int:
        return len(self.data)

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset + n > len(self.data):
            raise CorruptionError(f"{self.name}: read past end")
        return self.data[offset:offset + n]

    def readinto_at(self, offset: int, buffer: memoryview) -> None:
        buffer[:] = self.read_at(offset, buffer.nbytes)

    def close(self) -> None:
        pass


def build(items: list[tuple[bytes, bytes]], block_size: int = 262144) -> bytes:
    sink = io.BytesIO()
    builder = TableBuilder(sink, block_size=block_size)
    for key, value in items:
        builder.add(key, value)
    size = builder.finish()
    assert size == len(sink.getvalue())
    return sink.getvalue()


# The format reference's TF-verified index for SaveV2(["a", "b"], [float32 [1, 2], string ["hi"]]).
GOLDEN_INDEX = bytes.fromhex(
    "00000608011a020801"
    "00010f610801120412020802280835593ce535"
    "000111620807120412020801200828073509eb4d15"
    "0000000001000000" "00e04822bf"
    "0000000001000000" "00c0f2a1b0"
    "0001026300390000000001000000" "00a1756bff"
    "3e084b0e" + "00" * 36 + "57fb808b247547db")


def test_golden_index_bytes() -> None:
    items = [(b"", bytes.fromhex("08011a020801")),
             (b"a", bytes.fromhex("0801120412020802280835593ce535")),
             (b"b", bytes.fromhex("0807120412020801200828073509eb4d15"))]
    assert len(GOLDEN_INDEX) == 142
    assert build(items) == GOLDEN_INDEX
    assert list(TableReader(BytesSource(GOLDEN_INDEX))) == items


def test_empty_block_is_the_metaindex_block() -> None:
    assert BlockBuilder(16).finish() == bytes.fromhex("0000000001000000")


@pytest.mark.parametrize(("start", "limit", "expected"), [
    (b"abc", b"abd", b"abc"),  # adjacent bytes: no shorter separator
    (b"abc", b"abz", b"abd"),
    (b"ab", b"abc", b"ab"),  # prefix
    (b"a\xff", b"b", b"a\xff"),
    (b"helloworld", b"hellz", b"hellp"),
])
def test_find_shortest_separator(start: bytes, limit: bytes, expected: bytes) -> None:
    assert find_shortest_separator(start, limit) == expected
    assert start <= expected < limit or expected == start


@pytest.mark.parametrize(("key", "expected"), [
    (b"k_str_scalar", b"l"), (b"\xff\xffa", b"\xff\xffb"), (b"\xff\xff", b"\xff\xff"), (b"", b""),
])
def test_find_short_successor(key: bytes, expected: bytes) -> None:
    assert find_short_successor(key) == expected


def test_block_restarts_every_sixteen_entries() -> None:
    builder = BlockBuilder(16)
    keys = [b"key%03d" % i for i in range(40)]
    for key in keys:
        builder.add(key, b"v")
    contents = builder.finish()
    num_restarts = int.from_bytes(contents[-4:], "little")
    assert num_restarts == 3  # entries 0, 16, 32
    assert [k for k, _ in parse_block(contents, "test")] == keys


@pytest.mark.parametrize("block_size", [1, 16, 100, 4096])
def test_round_trip_many_blocks(block_size: int) -> None:
    rng = random.Random(block_size)
    keys = sorted({bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12))) for _ in range(500)})
    items = [(k, bytes(rng.randrange(256) for _ in range(rng.randrange(0, 30)))) for k in keys]
    data = build(items, block_size)
    assert list(TableReader(BytesSource(data))) == items


def test_huge_entry_gets_its_own_block() -> None:
    items = [(b"a", b"x"), (b"b", b"y" * 600_000), (b"c", b"z")]
    data = build(items)
    assert list(TableReader(BytesSource(data))) == items
    footer = Footer.decode(data[-FOOTER_LENGTH:], "t")
    index = parse_block(data[footer.index.offset:footer.index.offset + footer.index.size], "t")
    assert len(index) == 3  # "a" flushed before the huge entry, which fills a block itself


def test_builder_rejects_unsorted_keys() -> None:
    builder = TableBuilder(io.BytesIO())
    builder.add(b"b", b"")
    with pytest.raises(ValueError):
        builder.add(b"a", b"")
    with pytest.raises(ValueError):
        builder.add(b"b", b"")


def test_block_handle_round_trip() -> None:
    handle = BlockHandle(2**40 + 3, 262144)
    assert BlockHandle.decode(handle.encode()) == (handle, len(handle.encode()))


# ---- malformed tables ---------------------------------------------------------------------

def _table() -> bytes:
    return build([(b"", b"header")] + [(b"k%04d" % i, b"value %d" % i) for i in range(200)], block_size=512)


def _read_all(data: bytes) -> list[tuple[bytes, bytes]]:
    return list(TableReader(BytesSource(data)))


def test_bad_magic() -> None:
    data = bytearray(_table())
    data[-1] ^= 0x01
    with pytest.raises(CorruptionError, match="bad magic number"):
        _read_all(bytes(data))


def test_too_short() -> None:
    with pytest.raises(CorruptionError, match="too short to be an sstable"):
        _read_all(b"\x00" * 47)


def test_every_truncation_is_a_tfckpt_error() -> None:
    data = _table()
    for cut in range(len(data)):
        with pytest.raises(TfckptError):
            _read_all(data[:cut])


def test_every_single_byte_flip_is_detected_or_harmless() -> None:
    data = _table()
    good = _read_all(data)
    for pos in range(len(data)):
        broken = bytearray(data)
        broken[pos] ^= 0x5A
        try:
            result = _read_all(bytes(broken))
        except TfckptError:
            continue
        # Only bytes no reader looks at (footer padding, ignored metaindex) may be flipped silently.
        assert result == good, f"flip at {pos} changed the data without an error"


def test_block_checksum_mismatch_names_the_offset() -> None:
    data = bytearray(_table())
    data[3] ^= 0x01  # inside the first data block
    with pytest.raises(ChecksumError, match=r"block checksum mismatch") as info:
        _read_all(bytes(data))
    assert "offset 0" in str(info.value)


def test_handle_past_end_is_rejected_before_reading() -> None:
    footer = Footer(BlockHandle(0, 8), BlockHandle(10, 2**40)).encode()
    with pytest.raises(CorruptionError, match="runs past"):
        _read_all(b"\x00" * 100 + footer)


def test_unknown_block_type_is_unsupported() -> None:
    data = bytearray(build([(b"", b"h")]))
    # Rewrite the single data block's type byte and fix its CRC so only the type is wrong.
    from tfckpt.coding import crc32c, mask
    footer = Footer.decode(bytes(data[-FOOTER_LENGTH:]), "t")
    index = parse_block(bytes(data[footer.index.offset:footer.index.offset + footer.index.size]), "t")
    handle, _ = BlockHandle.decode(index[0][1])
    data[handle.offset + handle.size] = 7
    crc = mask(crc32c(bytes([7]), crc32c(bytes(data[handle.offset:handle.offset + handle.size]))))
    data[handle.offset + handle.size + 1:handle.offset + handle.size + 5] = crc.to_bytes(4, "little")
    with pytest.raises(UnsupportedError, match="bad block type 7"):
        _read_all(bytes(data))


# ---- snappy ---------------------------------------------------------------------------------

def test_snappy_literal_and_copies() -> None:
    # "abcd" literal then copy-1 (len 8, offset 4) -> "abcd" * 3, then copy-2 (len 2, offset 12)
    data = bytes([14, 3 << 2]) + b"abcd" + bytes([0b000_100_01, 4]) + bytes([(2 - 1) << 2 | 2, 12, 0])
    assert snappy.decompress(data, "t") == b"abcdabcdabcdab"


def test_snappy_long_literal_length_bytes() -> None:
    body = bytes(range(256)) * 2
    data = bytes([0x80, 0x04, 61 << 2]) + (len(body) - 1).to_bytes(2, "little") + body
    assert snappy.decompress(data, "t") == body


@pytest.mark.parametrize("data", [
    b"\x05\x00a",  # claims 5 bytes, has 1
    b"\x04\x05\x00",  # copy before any output
    b"\xff\xff\xff\xff\x0f\x00a",  # absurd claimed length
    b"\x02\x0cab",  # literal longer than input
])
def test_snappy_corrupt_inputs(data: bytes) -> None:
    with pytest.raises(CorruptionError, match="corrupted compressed block"):
        snappy.decompress(data, "t")


def test_snappy_compressed_table_block_is_read() -> None:
    # A table whose only data block is stored as a literal-only snappy block (type 1).
    from tfckpt.coding import FIXED32, crc32c, mask
    from tfckpt.table import INDEX_RESTART_INTERVAL
    block = BlockBuilder(16)
    block.add(b"", b"header")
    block.add(b"k", b"v")
    raw = block.finish()
    compressed = bytes([len(raw), (len(raw) - 1) << 2]) + raw
    out = bytearray()

    def put(contents: bytes, kind: int) -> BlockHandle:
        handle = BlockHandle(len(out), len(contents))
        out.extend(contents + bytes([kind]) + FIXED32.pack(mask(crc32c(bytes([kind]), crc32c(contents)))))
        return handle

    data_handle = put(compressed, 1)
    meta = put(BlockBuilder(16).finish(), 0)
    index = BlockBuilder(INDEX_RESTART_INTERVAL)
    index.add(b"l", data_handle.encode())
    index_handle = put(index.finish(), 0)
    out += Footer(meta, index_handle).encode()
    assert _read_all(bytes(out)) == [(b"", b"header"), (b"k", b"v")]



from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=5000),
                 st.lists(st.sampled_from([b"abc", b"tensor/", b"\x00" * 7, b"xyz" * 30]), max_size=300)
                 .map(b"".join)))
def test_snappy_matches_a_real_encoder(data: bytes) -> None:
    cramjam = optional("cramjam")
    compressed = bytes(cramjam.snappy.compress_raw(data))
    assert snappy.decompress(compressed, "t") == data


def test_replace_first_value_patches_in_place_or_declines() -> None:
    from tfckpt.table import TableReader, replace_first_value
    sink = io.BytesIO()
    builder = TableBuilder(sink, block_size=64)
    builder.add(b"", b"\x08\x01")
    for i in range(50):
        builder.add(b"key%03d" % i, b"v" * (i % 7))
    builder.finish()
    table = sink.getvalue()

    class Source:
        name = "t"

        def __init__(self, data: bytes) -> None:
            self.data = data

        def size(self) -> int:
            return len(self.data)

        def read_at(self, offset: int, n: int) -> bytes:
            return self.data[offset:offset + n]

    patched = replace_first_value(table, b"\x08\x02")
    assert patched is not None and len(patched) == len(table)
    entries = list(TableReader(Source(patched)))  # every block checksum still verifies
    assert entries[0] == (b"", b"\x08\x02") and entries[1:] == list(TableReader(Source(table)))[1:]
    assert replace_first_value(table, b"\x08\x02\x10\x01") is None  # another length: rebuild instead


def _parsed(blocks: list[bytes]) -> list[tuple[bytes, bytes]] | type[TfckptError]:
    try:
        return [pair for number, block in enumerate(blocks) for pair in parse_block(block, f"b {number}")]
    except TfckptError as exc:
        return type(exc)


def _scanned(blocks: list[bytes], *, vectorised: bool) -> list[tuple[bytes, bytes]] | type[TfckptError] | None:
    from tfckpt.table.block import _scan_usual, scan_blocks  # the vectorised path on its own, to know it ran
    try:
        entries = _scan_usual(blocks) if vectorised else scan_blocks(blocks, [f"b {n}" for n in range(len(blocks))])
    except TfckptError as exc:
        return type(exc)
    return None if entries is None else [(entries.key(i), entries.value(i)) for i in range(len(entries.texts))]


def _blocks(items: list[tuple[bytes, bytes]], interval: int, cut: int) -> list[bytes]:
    out, builder = [], BlockBuilder(interval)
    for n, (key, value) in enumerate(items):
        if n and n % cut == 0:
            out.append(builder.finish())
            builder = BlockBuilder(interval)
        builder.add(key, value)
    return [*out, builder.finish()]


keys_strategy = st.lists(st.binary(max_size=12), max_size=120, unique=True).map(sorted)


@settings(max_examples=300, deadline=None)
@given(keys_strategy, st.integers(1, 80), st.integers(1, 130), st.integers(0, 200), st.data())
def test_the_vectorised_scan_finds_what_the_parser_finds(keys: list[bytes], interval: int, cut: int,
                                                        value_size: int, data: st.DataObject) -> None:
    """On blocks any writer could make (any restart interval, values of 0-200 bytes, so one-
    and two-byte lengths, blocks cut anywhere) the scan equals entry-by-entry parsing; and it
    really is vectorised for the usual layout (interval <= 64, one-byte lengths)."""
    items = [(key, bytes([i % 251]) * (value_size if i % 3 else 1)) for i, key in enumerate(keys)]
    blocks = _blocks(items, interval, cut)
    expected = _parsed(blocks)
    assert expected == items
    assert _scanned(blocks, vectorised=False) == expected
    usual = min(interval, cut, len(items)) <= 64 and all(len(k) < 0x80 and len(v) < 0x80 for k, v in items)
    assert _scanned(blocks, vectorised=True) == (expected if usual else None)
    # Damage one byte (not a checksum matter here: the blocks' contents themselves): the scan
    # still agrees with the parser, or the parser raises and so does the scan.
    block = data.draw(st.integers(0, len(blocks) - 1))
    if blocks[block]:
        at = data.draw(st.integers(0, len(blocks[block]) - 1))
        damaged = list(blocks)
        damaged[block] = blocks[block][:at] + bytes([blocks[block][at] ^ data.draw(st.integers(1, 255))]) \
            + blocks[block][at + 1:]
        expected = _parsed(damaged)
        assert _scanned(damaged, vectorised=False) == expected
        assert _scanned(damaged, vectorised=True) in (expected, None)


def test_the_scan_declines_long_runs_and_odd_restarts() -> None:
    """What the vectorised walk must not follow (a run of 10^4 entries without a restart, a
    restart array pointing into an entry) goes to the linear parser, with the same result."""
    items = [(b"k%05d" % i, b"v") for i in range(10_000)]
    long_run = _blocks(items, 10**6, 10**6)
    assert _scanned(long_run, vectorised=True) is None
    assert _scanned(long_run, vectorised=False) == items
    block = bytearray(_blocks(items[:40], 16, 100)[0])
    FIXED32 = __import__("struct").Struct("<I")
    FIXED32.pack_into(block, len(block) - 8, 5)  # the second restart, moved into the first entry
    assert _scanned([bytes(block)], vectorised=True) is None
    assert _scanned([bytes(block)], vectorised=False) == items[:40]


