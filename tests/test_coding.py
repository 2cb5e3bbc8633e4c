import pytest

from tfckpt.coding import MASK_DELTA, crc32c, decode_varint, encode_varint, mask, unmask
from tfckpt.errors import CorruptionError

# RFC 3720 (iSCSI) appendix B.4 CRC32C test vectors.
RFC3720 = [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]


@pytest.mark.parametrize(("data", "expected"), RFC3720)
def test_crc32c_rfc3720_vectors(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected


def test_crc32c_extends_across_pieces() -> None:
    data = b"The quick brown fox jumps over the lazy dog"
    assert crc32c(data[10:], crc32c(data[:10])) == crc32c(data)


def test_mask_known_values() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert mask(0xE3069283) == 0xC78AB0E5
    assert mask(0) == MASK_DELTA


@pytest.mark.parametrize("crc", [0, 1, 0xFFFFFFFF, 0xE3069283, 0x80000000, 12345678])
def test_unmask_inverts_mask(crc: int) -> None:
    assert unmask(mask(crc)) == crc


@pytest.mark.parametrize(("value", "encoded"), [
    (0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
    (16384, b"\x80\x80\x01"), (2**32 - 1, b"\xff\xff\xff\xff\x0f"),
    (2**64 - 1, b"\xff" * 9 + b"\x01"),
])
def test_varint_known_answers(value: int, encoded: bytes) -> None:
    assert encode_varint(value) == encoded
    assert decode_varint(encoded, 0, len(encoded)) == (value, len(encoded))


def test_varint_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError):
        encode_varint(-1)
    with pytest.raises(ValueError):
        encode_varint(2**64)


@pytest.mark.parametrize(("data", "max_bytes", "message"), [
    (b"\x80\x80", 10, "runs past the end"),  # truncated
    (b"\xff" * 11 + b"\x01", 10, "longer than 10"),  # more than 10 bytes
    (b"\xff" * 9 + b"\x7f", 10, "overflows"),  # 10 bytes but > 2**64
    (b"\xff\xff\xff\xff\x1f", 5, "overflows"),  # varint32 above 2**32
    (b"\x80\x80\x80\x80\x80\x01", 5, "longer than 5"),
])
def test_varint_decode_errors_name_the_offset(data: bytes, max_bytes: int, message: str) -> None:
    with pytest.raises(CorruptionError, match=message) as info:
        decode_varint(data, 0, len(data), max_bytes, what="test varint")
    assert "test varint at offset 0" in str(info.value)


def test_vectorised_encoders_match_the_scalar_ones() -> None:
    """encode_varints/varint_lengths/mask_many agree with encode_varint/mask at every varint
    length boundary, and put_spans copies spans of any length (many short ones crossing its
    1 MiB batches, and longer ones alone) to where they belong."""
    import numpy as np

    from tfckpt.coding import encode_varints, mask_many, put_rows, put_spans, varint_lengths
    values = sorted({0, 1, 2**63 - 1, *(2**k + d for k in range(7, 63, 7) for d in (-1, 0, 1))})
    rows, lengths = encode_varints(np.array(values, dtype=np.int64))
    assert [bytes(row[:n]) for row, n in zip(rows, lengths)] == [encode_varint(v) for v in values]
    assert varint_lengths(np.array(values)).tolist() == [len(encode_varint(v)) for v in values]
    crcs = np.array([0, 1, 0xFFFFFFFF, 0x12345678, MASK_DELTA], dtype=np.uint32)
    assert mask_many(crcs).tolist() == [mask(int(c)) for c in crcs]
    rng = np.random.default_rng(1)
    lengths = np.concatenate([rng.integers(0, 300, 20_000), [3 << 20, 0, 5]])
    data = rng.integers(0, 256, int(lengths.sum()) + 99, dtype=np.uint8)
    starts = np.minimum(rng.integers(0, 99, len(lengths)) + np.cumsum(lengths) - lengths, len(data) - lengths)
    at = np.cumsum(lengths[::-1])[::-1] - lengths  # written in reverse order
    out = np.zeros(int(lengths.sum()), dtype=np.uint8)
    put_spans(out, at, data, starts, lengths)
    assert all(np.array_equal(out[a:a + n], data[s:s + n]) for a, s, n in zip(at.tolist(), starts.tolist(), lengths.tolist()))
    out = np.zeros(12, dtype=np.uint8)
    put_rows(out, np.array([0, 6]), np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8), np.array([3, 1]))
    assert out.tolist() == [1, 2, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0]


def test_words_at_reads_little_endian_words_at_any_byte() -> None:
    """words_at reads the word starting at each offset, aligned or not, up to the last one
    that fits, as struct reads it."""
    import struct

    import numpy as np

    from tfckpt.coding import words_at
    data = np.frombuffer(bytes(range(7, 7 + 37)), dtype=np.uint8)
    for width, code in ((2, "<H"), (4, "<I"), (8, "<Q")):
        at = np.arange(len(data) - width + 1)
        assert words_at(data, at, width).tolist() == [struct.unpack_from(code, data, i)[0] for i in at.tolist()]
    with pytest.raises(IndexError):
        words_at(data, np.array([len(data) - 7]), 8)  # runs past the end: refused, never read
