"""The redirection ECP as the contract lays it out (SPEC §2, §4)."""

from __future__ import annotations

import dataclasses
import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.contract import (
    ECP_SIZE,
    GUID_ECP_CREATE_REDIRECTION,
    VALID_FLAG_COMBINATIONS,
    ZERO_ID,
    Flags,
    RedirectionEcp,
)

LAYER = Flags.SERVICED_FROM_LAYER
SCRATCH = Flags.SERVICED_FROM_SCRATCH
REGISTERED = Flags.SERVICED_FROM_REGISTERED_LAYER
REMOTE = Flags.SERVICED_FROM_REMOTE_LAYER
USER_MODE = Flags.SERVICED_FROM_USER_MODE

sizes = st.integers(0, 0xFFFF)
flag_values = st.integers(0, 0xFFFF)
ids16 = st.binary(min_size=16, max_size=16)


# --- constants ------------------------------------------------------------------------
def test_ecp_size_is_36() -> None:
    assert ECP_SIZE == 36 == 0x24
    assert struct.calcsize("<HH16s16s") == ECP_SIZE


def test_guid_ecp_create_redirection_value() -> None:
    assert isinstance(GUID_ECP_CREATE_REDIRECTION, uuid.UUID)
    assert str(GUID_ECP_CREATE_REDIRECTION) == "188d6bd6-a126-4fa8-bdf2-1ccdf896f3e0"
    # Windows little-endian layout of the same GUID.
    assert GUID_ECP_CREATE_REDIRECTION.bytes_le == bytes.fromhex(
        "d66b8d1826a1a84fbdf21ccdf896f3e0")


def test_flag_values() -> None:
    assert int(LAYER) == 0x1
    assert int(SCRATCH) == 0x2
    assert int(REGISTERED) == 0x4
    assert int(REMOTE) == 0x8
    assert int(USER_MODE) == 0x10
    assert issubclass(Flags, int)


def test_valid_flag_combinations_are_exactly_the_five_of_safe5() -> None:
    assert {int(f) for f in VALID_FLAG_COMBINATIONS} == {
        0x1, 0x1 | 0x4, 0x1 | 0x8, 0x1 | 0x8 | 0x4, 0x2}
    assert USER_MODE not in VALID_FLAG_COMBINATIONS
    assert LAYER | SCRATCH not in VALID_FLAG_COMBINATIONS
    assert Flags(0) not in VALID_FLAG_COMBINATIONS


def test_conformance_reexports_the_contract_unchanged() -> None:
    import conformance

    assert conformance.RedirectionEcp is RedirectionEcp
    assert conformance.Flags is Flags
    assert conformance.ECP_SIZE == ECP_SIZE
    assert conformance.GUID_ECP_CREATE_REDIRECTION == GUID_ECP_CREATE_REDIRECTION


# --- layout ---------------------------------------------------------------------------
def test_pack_golden_bytes() -> None:
    fid = (0x25).to_bytes(16, "little")
    guid = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    raw = RedirectionEcp.pack(36, LAYER | REGISTERED, fid, guid.bytes_le)
    assert raw == (
        b"\x24\x00"  # Size = 36, little-endian USHORT
        + b"\x05\x00"  # Flags = LAYER | REGISTERED
        + b"\x25" + bytes(15)  # FILE_ID_128, bytes 0-7 the low 64 bits
        + bytes.fromhex("33221100554477668899aabbccddeeff")  # GUID, bytes_le
    )
    ecp = RedirectionEcp.parse(raw)
    assert uuid.UUID(bytes_le=ecp.volume_guid) == guid
    assert int.from_bytes(ecp.file_id, "little") == 0x25


def test_pack_defaults() -> None:
    raw = RedirectionEcp.pack()
    assert raw == b"\x24\x00" + bytes(34)
    ecp = RedirectionEcp.parse(raw)
    assert ecp.size == ECP_SIZE
    assert ecp.flags == Flags(0)
    assert ecp.file_id == ecp.volume_guid == ZERO_ID


@pytest.mark.parametrize(("fid", "vol"), [(bytes(15), ZERO_ID), (ZERO_ID, bytes(17)),
                                          (b"", b"")])
def test_pack_rejects_ids_that_are_not_16_bytes(fid: bytes, vol: bytes) -> None:
    with pytest.raises(ValueError):
        RedirectionEcp.pack(36, LAYER, fid, vol)


@given(size=sizes, flags=flag_values, fid=ids16, vol=ids16)
def test_pack_parse_round_trip(size: int, flags: int, fid: bytes, vol: bytes) -> None:
    raw = RedirectionEcp.pack(size, flags, fid, vol)
    assert len(raw) == ECP_SIZE
    assert raw[0:2] == size.to_bytes(2, "little")
    assert raw[2:4] == flags.to_bytes(2, "little")
    assert raw[4:20] == fid
    assert raw[20:36] == vol
    ecp = RedirectionEcp.parse(raw)
    assert ecp.raw == raw
    assert ecp.acknowledged is True
    assert ecp.complete is True
    assert ecp.size == size
    assert int(ecp.flags) == flags
    assert isinstance(ecp.flags, Flags)
    assert ecp.file_id == fid
    assert ecp.volume_guid == vol
    assert ecp.ids == fid + vol
    assert RedirectionEcp.pack(ecp.size, ecp.flags, ecp.file_id, ecp.volume_guid) == raw


@given(guid=st.uuids(), fid=ids16)
def test_volume_guid_is_windows_little_endian(guid: uuid.UUID, fid: bytes) -> None:
    ecp = RedirectionEcp.parse(RedirectionEcp.pack(36, LAYER, fid, guid.bytes_le))
    assert uuid.UUID(bytes_le=ecp.volume_guid) == guid


@given(raw=st.binary(min_size=0, max_size=100), ack=st.booleans())
def test_parse_never_raises(raw: bytes, ack: bool) -> None:
    ecp = RedirectionEcp.parse(raw, acknowledged=ack)
    assert ecp.raw == raw
    assert ecp.acknowledged is ack
    assert ecp.complete is (len(raw) >= ECP_SIZE)
    padded = raw[:ECP_SIZE].ljust(ECP_SIZE, b"\0")
    assert ecp.size == int.from_bytes(padded[0:2], "little")
    assert int(ecp.flags) == int.from_bytes(padded[2:4], "little")
    assert ecp.file_id == padded[4:20]
    assert ecp.volume_guid == padded[20:36]
    assert ecp.ids == padded[4:36]
    assert len(ecp.file_id) == len(ecp.volume_guid) == 16
    repr(ecp)
    hash(ecp)


@given(raw=st.binary(min_size=0, max_size=ECP_SIZE - 1))
def test_short_buffers_are_incomplete(raw: bytes) -> None:
    assert RedirectionEcp.parse(raw).complete is False


def test_parse_accepts_bytearray_and_memoryview() -> None:
    packed = RedirectionEcp.pack(36, LAYER, bytes(range(16)), bytes(range(16, 32)))
    for raw in (bytearray(packed), memoryview(packed)):
        ecp = RedirectionEcp.parse(raw)
        assert type(ecp.raw) is bytes
        assert ecp == RedirectionEcp.parse(packed)


@given(flags=flag_values)
def test_unknown_flag_bits_are_preserved(flags: int) -> None:
    ecp = RedirectionEcp.parse(RedirectionEcp.pack(36, flags))
    assert int(ecp.flags) == flags
    assert int(ecp.flags) & ~0x1F == flags & ~0x1F


def test_unknown_bit_makes_flags_invalid() -> None:
    ecp = RedirectionEcp.parse(RedirectionEcp.pack(36, LAYER | 0x40))
    assert int(ecp.flags) == 0x41
    assert ecp.flags != LAYER
    assert ecp.flags not in VALID_FLAG_COMBINATIONS


def test_ecp_is_frozen() -> None:
    ecp = RedirectionEcp.parse(RedirectionEcp.pack(36, LAYER))
    for name in ("raw", "acknowledged", "size", "flags", "file_id", "volume_guid", "ids",
                 "complete"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(ecp, name, getattr(ecp, name))


@given(raw=st.binary(max_size=40), ack=st.booleans())
def test_equality_and_hash_follow_raw_and_acknowledged(raw: bytes, ack: bool) -> None:
    a = RedirectionEcp.parse(raw, ack)
    b = RedirectionEcp(bytes(raw), ack)
    assert a == b
    assert hash(a) == hash(b)
    assert a != RedirectionEcp.parse(raw, not ack)
    assert a != RedirectionEcp.parse(raw + b"\0", ack)
