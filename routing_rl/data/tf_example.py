"""``tf.train.Example`` messages, decoded and encoded without TensorFlow or protobuf.

The protobuf wire format of ``tf.train.Example`` (``core/example/{example,feature}.proto``)::

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }   // map entry: key = 1, value = 2
    Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                            Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }

The decoder accepts packed and unpacked repeated numbers and skips unknown fields, as protobuf
parsers must; the encoder writes packed numbers, like TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from routing_rl.data.base import DataError
from routing_rl.data.tfrecord import read_tfrecord, write_tfrecord

_U64 = (1 << 64) - 1

FeatureKind = Literal["bytes", "float", "int64", "none"]


@dataclass(frozen=True)
class Feature:
    """One ``tf.train.Feature``: ``kind`` says which list of the oneof is set.

    ``values`` is a list of ``bytes`` for ``"bytes"``, a float32 array for ``"float"``, an int64
    array for ``"int64"``, and empty for ``"none"`` (a Feature with no list set).
    """

    kind: FeatureKind
    values: list[bytes] | np.ndarray


def bytes_feature(values: Sequence[bytes]) -> Feature:
    return Feature("bytes", [bytes(v) for v in values])


def float_feature(values: Sequence[float] | np.ndarray) -> Feature:
    return Feature("float", np.asarray(values, dtype=np.float32).reshape(-1))


def int64_feature(values: Sequence[int] | np.ndarray) -> Feature:
    return Feature("int64", np.asarray(values, dtype=np.int64).reshape(-1))


class ProtobufDecodeError(ValueError):
    """Malformed protobuf bytes; readers re-raise it as :class:`DataError` with file and record."""


_WIRE_VARINT, _WIRE_FIXED64, _WIRE_LEN, _WIRE_FIXED32 = 0, 1, 2, 5


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ProtobufDecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufDecodeError("varint longer than 10 bytes")


def _iter_fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field_number, wire_type, a, b)``: for varints ``a`` is the value; for the other
    wire types ``buf[a:b]`` is the payload."""
    pos = start
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ProtobufDecodeError("field number 0")
        if wire == _WIRE_VARINT:
            value, pos = _read_varint(buf, pos, end)
            yield field, wire, value, pos
            continue
        if wire == _WIRE_LEN:
            length, pos = _read_varint(buf, pos, end)
            size = length
        elif wire == _WIRE_FIXED64:
            size = 8
        elif wire == _WIRE_FIXED32:
            size = 4
        else:
            raise ProtobufDecodeError(f"unsupported wire type {wire} (groups are not used by tf.train.Example)")
        if pos + size > end:
            raise ProtobufDecodeError(f"field {field} runs past the end of its message")
        yield field, wire, pos, pos + size
        pos += size


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_bytes_list(buf: bytes, start: int, end: int) -> list[bytes]:
    return [buf[a:b] for f, w, a, b in _iter_fields(buf, start, end) if f == 1 and w == _WIRE_LEN]


def _decode_float_list(buf: bytes, start: int, end: int) -> np.ndarray:
    chunks: list[np.ndarray] = []
    for field, wire, a, b in _iter_fields(buf, start, end):
        if field != 1:
            continue
        if wire == _WIRE_LEN:
            if (b - a) % 4:
                raise ProtobufDecodeError("packed float list length is not a multiple of 4")
            chunks.append(np.frombuffer(buf, dtype="<f4", count=(b - a) // 4, offset=a))
        elif wire == _WIRE_FIXED32:
            chunks.append(np.frombuffer(buf, dtype="<f4", count=1, offset=a))
        else:
            raise ProtobufDecodeError(f"float list value with wire type {wire}")
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, dtype=np.float32)


def _decode_int64_list(buf: bytes, start: int, end: int) -> np.ndarray:
    values: list[int] = []
    for field, wire, a, b in _iter_fields(buf, start, end):
        if field != 1:
            continue
        if wire == _WIRE_VARINT:
            values.append(_signed64(a))
        elif wire == _WIRE_LEN:
            pos = a
            while pos < b:
                v, pos = _read_varint(buf, pos, b)
                values.append(_signed64(v))
        else:
            raise ProtobufDecodeError(f"int64 list value with wire type {wire}")
    return np.asarray(values, dtype=np.int64)


def _decode_feature(buf: bytes, start: int, end: int) -> Feature:
    feature = Feature("none", [])
    for field, wire, a, b in _iter_fields(buf, start, end):
        if wire != _WIRE_LEN:
            continue
        if field == 1:
            feature = Feature("bytes", _decode_bytes_list(buf, a, b))
        elif field == 2:
            feature = Feature("float", _decode_float_list(buf, a, b))
        elif field == 3:
            feature = Feature("int64", _decode_int64_list(buf, a, b))
    return feature


def parse_example(data: bytes) -> dict[str, Feature]:
    """Decode a serialised ``tf.train.Example`` into ``{name: Feature}``.

    Raises :class:`ProtobufDecodeError` on malformed bytes.
    """
    buf = bytes(data)
    features: dict[str, Feature] = {}
    for field, wire, a, b in _iter_fields(buf, 0, len(buf)):
        if field != 1 or wire != _WIRE_LEN:
            continue
        for f2, w2, a2, b2 in _iter_fields(buf, a, b):  # Features
            if f2 != 1 or w2 != _WIRE_LEN:
                continue
            key, value = "", Feature("none", [])
            for f3, w3, a3, b3 in _iter_fields(buf, a2, b2):  # map entry
                if f3 == 1 and w3 == _WIRE_LEN:
                    try:
                        key = buf[a3:b3].decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise ProtobufDecodeError(f"feature name is not UTF-8: {exc}") from None
                elif f3 == 2 and w3 == _WIRE_LEN:
                    value = _decode_feature(buf, a3, b3)
            features[key] = value
    return features


def _varint(value: int) -> bytes:
    value &= _U64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | _WIRE_LEN) + _varint(len(payload)) + payload


def _encode_feature(feature: Feature) -> bytes:
    if feature.kind == "bytes":
        return _len_field(1, b"".join(_len_field(1, bytes(v)) for v in feature.values))
    if feature.kind == "float":
        values = np.asarray(feature.values, dtype="<f4").reshape(-1)
        inner = _len_field(1, values.tobytes()) if values.size else b""
        return _len_field(2, inner)
    if feature.kind == "int64":
        values = np.asarray(feature.values, dtype=np.int64).reshape(-1)
        inner = _len_field(1, b"".join(_varint(int(v)) for v in values)) if values.size else b""
        return _len_field(3, inner)
    if feature.kind == "none":
        return b""
    raise ValueError(f"unknown feature kind {feature.kind!r}")


def encode_example(features: Mapping[str, Feature]) -> bytes:
    """Serialise ``{name: Feature}`` as a ``tf.train.Example`` (packed numbers, given key order)."""
    entries = b"".join(
        _len_field(1, _len_field(1, name.encode("utf-8")) + _len_field(2, _encode_feature(feature)))
        for name, feature in features.items()
    )
    return _len_field(1, entries)


def read_examples(path: str | Path, verify: bool = True) -> Iterator[dict[str, Feature]]:
    """Yield the decoded ``tf.train.Example`` of every record of a TFRecord file.

    Malformed protobuf raises :class:`DataError` naming the file and record number.
    """
    for index, data in enumerate(read_tfrecord(path, verify)):
        try:
            yield parse_example(data)
        except ProtobufDecodeError as exc:
            raise DataError(f"{path}: record {index} (0-based): not a valid tf.train.Example ({exc})") from None


def write_examples(path: str | Path, examples: Iterable[Mapping[str, Feature]]) -> int:
    """Write ``tf.train.Example`` records to a TFRecord file; returns the number written."""
    return write_tfrecord(path, (encode_example(e) for e in examples))
