"""TFRecord framing, CRC-32C and tf.train.Example encoding, without TensorFlow."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from routing_rl.data.base import DataError
from routing_rl.data.tf_example import (
    bytes_feature,
    encode_example,
    float_feature,
    int64_feature,
    parse_example,
    read_examples,
    write_examples,
)
from routing_rl.data.tfrecord import crc32c, crc32c_python, frame_record, masked_crc32c, read_tfrecord, write_tfrecord


def test_crc32c_known_vectors() -> None:
    for impl in (crc32c, crc32c_python):
        assert impl(b"123456789") == 0xE3069283
        assert impl(b"") == 0
        assert impl(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 bytes of zeros
        assert impl(b"\xff" * 32) == 0x62A8AB43  # RFC 3720 B.4: 32 bytes of 0xff
    data = bytes(range(256)) * 3
    assert crc32c(data) == crc32c_python(data)


def test_mask_formula() -> None:
    crc = crc32c(b"123456789")
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    assert masked_crc32c(b"123456789") == (rotated + 0xA282EAD8) & 0xFFFFFFFF


def test_record_framing_layout() -> None:
    framed = frame_record(b"abc")
    assert len(framed) == 8 + 4 + 3 + 4
    assert struct.unpack("<Q", framed[:8])[0] == 3
    assert struct.unpack("<I", framed[8:12])[0] == masked_crc32c(framed[:8])
    assert framed[12:15] == b"abc"
    assert struct.unpack("<I", framed[15:])[0] == masked_crc32c(b"abc")


def test_records_round_trip(tmp_path: Path) -> None:
    records = [b"", b"x", bytes(range(256)) * 40, b"last"]
    path = tmp_path / "a.tfrecord"
    assert write_tfrecord(path, records) == 4
    assert list(read_tfrecord(path)) == records


def test_corrupted_byte_raises_data_error_naming_file_and_record(tmp_path: Path) -> None:
    path = tmp_path / "bad.tfrecord"
    write_tfrecord(path, [b"first", b"second record"])
    raw = bytearray(path.read_bytes())
    raw[len(frame_record(b"first")) + 12 + 3] ^= 0x01  # a data byte of record 1
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"bad\.tfrecord: record 1 .*data CRC"):
        list(read_tfrecord(path))
    assert len(list(read_tfrecord(path, verify=False))) == 2


def test_corrupted_length_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "len.tfrecord"
    write_tfrecord(path, [b"payload"])
    raw = bytearray(path.read_bytes())
    raw[0] ^= 0x40
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"len\.tfrecord: record 0 .*length CRC"):
        list(read_tfrecord(path))
    write_tfrecord(path, [b"payload", b"more"])
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(DataError, match=r"record 1 .*truncated"):
        list(read_tfrecord(path))


def test_example_encoding_matches_hand_built_wire_bytes() -> None:
    # Example{features{feature{key:"a" value{int64_list{value:[1, 2]}}}}}, packed
    expected = bytes([0x0A, 0x0D, 0x0A, 0x0B, 0x0A, 0x01, 0x61, 0x12, 0x06, 0x1A, 0x04, 0x0A, 0x02, 0x01, 0x02])
    assert encode_example({"a": int64_feature([1, 2])}) == expected
    parsed = parse_example(expected)
    assert parsed["a"].kind == "int64" and parsed["a"].values.tolist() == [1, 2]


def test_unpacked_repeated_fields_and_unknown_fields_are_decoded() -> None:
    int64_list = bytes([0x08, 0x01, 0x08, 0x96, 0x01])  # value: 1, value: 150 (unpacked varints)
    float_list = bytes([0x0D]) + struct.pack("<f", 1.5) + bytes([0x0D]) + struct.pack("<f", -2.0)  # fixed32 each
    unknown = bytes([0x28, 0x07])  # field 5, varint: skipped
    feature_i = bytes([0x1A, len(int64_list)]) + int64_list
    feature_f = bytes([0x12, len(float_list)]) + float_list + unknown
    entries = b""
    for key, feature in ((b"i", feature_i), (b"f", feature_f)):
        entry = bytes([0x0A, len(key)]) + key + bytes([0x12, len(feature)]) + feature
        entries += bytes([0x0A, len(entry)]) + entry
    example = bytes([0x0A, len(entries)]) + entries
    parsed = parse_example(example)
    assert parsed["i"].values.tolist() == [1, 150]
    assert parsed["f"].kind == "float" and parsed["f"].values.tolist() == [1.5, -2.0]


def test_examples_round_trip_through_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    examples = [
        {
            "id": bytes_feature([b"vid%d" % i]),
            "labels": int64_feature([i, -5, 2**40]),
            "mean_rgb": float_feature(rng.standard_normal(1024)),
            "empty": float_feature([]),
        }
        for i in range(3)
    ]
    path = tmp_path / "ex.tfrecord"
    write_examples(path, examples)
    back = list(read_examples(path))
    assert len(back) == 3
    for original, decoded in zip(examples, back):
        assert decoded["id"].values == original["id"].values
        assert decoded["labels"].values.tolist() == original["labels"].values.tolist()
        assert np.array_equal(decoded["mean_rgb"].values, original["mean_rgb"].values)
        assert decoded["empty"].kind == "float" and len(decoded["empty"].values) == 0


def test_malformed_example_raises_data_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.tfrecord"
    write_tfrecord(path, [encode_example({"a": int64_feature([1])}), b"\x0a\xff\xff"])
    with pytest.raises(DataError, match=r"junk\.tfrecord: record 1 .*tf.train.Example"):
        list(read_examples(path))


def test_agrees_with_the_protobuf_library() -> None:
    """Cross-check against google.protobuf with tf.train.Example's schema built at run time."""
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fd = descriptor_pb2.FileDescriptorProto(name="example_test.proto", package="t", syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto
    for name, ftype in (("BytesList", F.TYPE_BYTES), ("FloatList", F.TYPE_FLOAT), ("Int64List", F.TYPE_INT64)):
        msg = fd.message_type.add(name=name)
        msg.field.add(name="value", number=1, type=ftype, label=F.LABEL_REPEATED)
    feature = fd.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (field, type_name) in enumerate(
        (("bytes_list", "BytesList"), ("float_list", "FloatList"), ("int64_list", "Int64List")), 1
    ):
        feature.field.add(
            name=field,
            number=number,
            type=F.TYPE_MESSAGE,
            type_name=".t." + type_name,
            label=F.LABEL_OPTIONAL,
            oneof_index=0,
        )
    features = fd.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, type_name=".t.Feature", label=F.LABEL_OPTIONAL)
    features.field.add(
        name="feature", number=1, type=F.TYPE_MESSAGE, type_name=".t.Features.FeatureEntry", label=F.LABEL_REPEATED
    )
    example = fd.message_type.add(name="Example")
    example.field.add(name="features", number=1, type=F.TYPE_MESSAGE, type_name=".t.Features", label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    Example = message_factory.GetMessageClass(pool.FindMessageTypeByName("t.Example"))

    msg = Example()
    msg.features.feature["labels"].int64_list.value.extend([3, -7, 2**50])
    msg.features.feature["rgb"].float_list.value.extend([0.25, -1.5])
    msg.features.feature["id"].bytes_list.value.append(b"abc")
    parsed = parse_example(msg.SerializeToString())
    assert parsed["labels"].values.tolist() == [3, -7, 2**50]
    assert parsed["rgb"].values.tolist() == [0.25, -1.5]
    assert parsed["id"].values == [b"abc"]

    ours = encode_example(
        {"labels": int64_feature([3, -7]), "rgb": float_feature([0.5]), "id": bytes_feature([b"x", b""])}
    )
    back = Example.FromString(ours)
    assert list(back.features.feature["labels"].int64_list.value) == [3, -7]
    assert list(back.features.feature["rgb"].float_list.value) == [0.5]
    assert list(back.features.feature["id"].bytes_list.value) == [b"x", b""]


def test_pure_python_backend_reads_what_the_default_backend_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import routing_rl.data.tfrecord as tfrecord

    path = tmp_path / "py.tfrecord"
    write_tfrecord(path, [b"alpha", bytes(range(200))])
    monkeypatch.setattr(tfrecord, "_crc32c_impl", crc32c_python)
    assert list(read_tfrecord(path)) == [b"alpha", bytes(range(200))]


@pytest.mark.parametrize("length", [2**64 - 1, 2**40])
def test_impossible_length_is_refused_before_reading(tmp_path: Path, length: int) -> None:
    """With CRC checks off only the file size vouches for the length field: no huge allocation."""
    path = tmp_path / "huge.tfrecord"
    write_tfrecord(path, [b"first", b"second"])
    raw = bytearray(path.read_bytes())
    start = len(frame_record(b"first"))
    raw[start : start + 8] = struct.pack("<Q", length)
    path.write_bytes(bytes(raw))
    with pytest.raises(
        DataError,
        match=rf"huge\.tfrecord: record 1 \(0-based\): length field says {length} bytes, but only 10 bytes "
        r"are left in the file .*truncated or corrupt",
    ):
        list(read_tfrecord(path, verify=False))


def test_directory_named_like_a_record_file(tmp_path: Path) -> None:
    path = tmp_path / "train0000.tfrecord"
    path.mkdir()
    with pytest.raises(DataError, match=r"train0000\.tfrecord is a directory, not a TFRecord file"):
        list(read_tfrecord(path))
