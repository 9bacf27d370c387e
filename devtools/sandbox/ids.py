"""Deterministic, invertible uuid-shaped ids: ``make_id(kind, index)`` <-> ``parse_id(text)``.

Bytes 0-7 are a keyed hash (seed, kind, index), byte 8 carries the kind, bytes 9-15 the index
(xor a keyed mask), so any record can be rebuilt from its id without a lookup table.
"""

from __future__ import annotations

import hashlib
import uuid

USER, ACCOUNT, PROFILE, CONTENT, CONTENT_GROUP, COMMENT = 1, 2, 3, 4, 5, 6
SOCIAL_TX, SOCIAL_PAYOUT, COMMERCE_TX, COMMERCE_PAYOUT, COMMERCE_BALANCE, AUDIENCE = 7, 8, 9, 10, 11, 12
CREATED_USER, WEBHOOK = 13, 14


class IdCodec:
    def __init__(self, seed: int) -> None:
        self._key = str(seed).encode()

    def _prefix(self, kind: int, index: int) -> bytes:
        h = hashlib.blake2b(b"%d:%d" % (kind, index), digest_size=8, key=self._key).digest()
        return h[:6] + bytes([0x40 | (h[6] & 0x0F), h[7]])

    def _mask(self, kind: int) -> int:
        return int.from_bytes(
            hashlib.blake2b(b"mask:%d" % kind, digest_size=7, key=self._key).digest(), "big"
        )

    def make(self, kind: int, index: int) -> str:
        tail = (int(index) ^ self._mask(kind)).to_bytes(7, "big")
        return str(uuid.UUID(bytes=self._prefix(kind, index) + bytes([0x80 | kind]) + tail))

    def parse(self, text: str, kind: int) -> int | None:
        """The index encoded in ``text`` if it is a valid id of ``kind``, else None."""
        try:
            raw = uuid.UUID(str(text)).bytes
        except (ValueError, AttributeError, TypeError):
            return None
        if raw[8] != (0x80 | kind):
            return None
        index = int.from_bytes(raw[9:], "big") ^ self._mask(kind)
        return index if raw[:8] == self._prefix(kind, index) else None
