"""Build JSON text column-wise with pyarrow compute (no per-row Python), nulls omitted as keys.

Two ways to use it:

* `string_literal` / `number_literal` / `json_object`: one JSON fragment column at a time (each call
  materialises its result);
* `Obj` / `Text` / `render`: describe a whole (nested) object and render it with a single
  `binary_join_element_wise` call: keys, quotes and punctuation are scalars, string values are joined in
  unquoted when none of them needs escaping, and present/absent members only cost small prefix columns.
  Both produce the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_CONTROL = r"[\x00-\x1f]"
_NEEDS_ESCAPE = r'[\\"\x00-\x1f]'
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_NULL_STRING = pa.scalar(None, pa.string())


def _as_string_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    text = pc.cast(values, pa.string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks() if text.num_chunks != 1 else text.chunk(0)
    return text


def _maybe_needs_escape(text: pa.Array) -> bool:
    """False only when no value contains `"`, `\\` or a control character (a byte check of the whole
    data buffer: in UTF-8 every byte < 0x80 is that ASCII character). True may be a false alarm (bytes
    under null slots), callers then check row by row."""
    if not len(text) or text.null_count == len(text):
        return False
    _, offset_buffer, data_buffer = text.buffers()
    if data_buffer is None:
        return False
    offsets = np.frombuffer(offset_buffer, np.int32, len(text) + 1, text.offset * 4)
    data = np.frombuffer(data_buffer, np.uint8)[offsets[0] : offsets[-1]]
    return bool(((data < 0x20) | (data == 0x22) | (data == 0x5C)).any())


def _escape(text: pa.Array) -> pa.Array:
    """JSON string escaping (without the quotes) of every value."""
    text = pc.replace_substring(text, "\\", "\\\\")
    text = pc.replace_substring(text, '"', '\\"')
    if pc.any(pc.match_substring_regex(text, _CONTROL)).as_py():
        for code in range(0x20):
            char = chr(code)
            text = pc.replace_substring(text, char, _SHORT_ESCAPES.get(char, f"\\u{code:04x}"))
    return text


def escaped(values: pa.Array | pa.ChunkedArray, *, safe: bool = False) -> pa.Array:
    """Strings -> their JSON-escaped text, without quotes; null stays null.

    Only the rows that contain `"`, `\\` or a control character are rewritten. `safe=True` skips the
    check: for values this code produced itself and that cannot contain those characters (RFC 3339
    timestamps from `events.rfc3339`, normalised platform names, constants)."""
    text = _as_string_array(values)
    if safe or not _maybe_needs_escape(text):
        return text
    mask = pc.fill_null(pc.match_substring_regex(text, _NEEDS_ESCAPE), False)
    hits = pc.sum(mask).as_py() or 0
    if not hits:
        return text
    if hits * 4 > len(text):
        return _escape(text)
    return pc.replace_with_mask(text, mask, _escape(pc.filter(text, mask)))


def string_literal(values: pa.Array | pa.ChunkedArray, *, safe: bool = False) -> pa.Array:
    """Strings -> JSON string literals (quoted, escaped); null stays null."""
    return pc.binary_join_element_wise('"', escaped(values, safe=safe), '"', "")


def number_literal(values: pa.Array, *, integer: bool) -> pa.Array:
    """Numbers -> JSON number text; null/NaN/inf -> null (the key is then left out)."""
    nums = pc.cast(values, pa.float64())
    nums = pc.if_else(pc.is_finite(nums), nums, pa.scalar(None, pa.float64()))
    if integer:
        return pc.cast(pc.cast(pc.round(nums), pa.int64()), pa.string())
    return pc.cast(nums, pa.string())


def json_object(members: list[tuple[str, pa.Array]], *, empty_as_null: bool = False) -> pa.Array:
    """`{"k1":v1,"k2":v2}` per row from JSON-fragment columns; a null fragment leaves its key out."""
    if not members:
        raise ValueError("json_object needs at least one member (its row count)")
    return render(Obj(members, omit_empty=empty_as_null), len(members[0][1]))


@dataclass
class Text:
    """A string value rendered as a JSON string literal (escaped as needed); null leaves the key out."""

    values: pa.Array | pa.ChunkedArray
    safe: bool = False


@dataclass
class Obj:
    """A JSON object; members are (key, Obj | Text | JSON-fragment column). A null fragment leaves its
    key out. `omit_empty`: an object without members present is itself left out (null at top level)."""

    members: list[tuple[str, Node]]
    omit_empty: bool = False


# str = a constant string value (the same in every row), rendered with json.dumps (same escaping).
Node = Union[Obj, Text, str, pa.Array, pa.ChunkedArray]  # noqa: UP007 (a runtime alias)
Piece = Union[str, pa.Array]  # noqa: UP007


class _Builder:
    """Flattens an `Obj` tree into the argument list of one `binary_join_element_wise` call."""

    def __init__(self, n: int):
        self.n = n
        self.pieces: list[Piece] = []

    def add(self, *pieces: Piece) -> None:
        for piece in pieces:
            if isinstance(piece, str) and self.pieces and isinstance(self.pieces[-1], str):
                self.pieces[-1] += piece
            else:
                self.pieces.append(piece)

    def obj(self, obj: Obj, open_: Piece | None) -> pa.Array | None:
        """Emit `open_` + `{...}` (present members only). With `omit_empty`, `open_` must be a scalar and
        the whole thing is emitted only where some member is present. Returns the object's presence
        (None = every row)."""
        if not obj.omit_empty:
            self.add(open_ if open_ is not None else "", "{")
            self.members(obj.members)
            self.add("}")
            return None
        # Presence first (cheap, from validity), then the pieces: where the object is absent every
        # member piece is already "", so only the opening and closing need to be conditional.
        present = self.presence(obj)
        if present is False:
            return pa.array(np.zeros(self.n, dtype=bool))
        if present is None:
            self.add(open_ if open_ is not None else "", "{")
            self.members(obj.members)
            self.add("}")
            return None
        self.add(pc.if_else(present, _join(open_ if open_ is not None else "", "{"), ""))
        self.members(obj.members)
        self.add(pc.if_else(present, "}", ""))
        return present

    def presence(self, node: Node) -> pa.Array | bool | None:
        """None = present in every row, False = in none, else a boolean mask."""
        if isinstance(node, Obj):
            if not node.omit_empty:
                return None
            masks = []
            for _, member in node.members:
                present = self.presence(member)
                if present is None:
                    return None
                if present is not False:
                    masks.append(present)
            if not masks:
                return False
            out = masks[0]
            for mask in masks[1:]:
                out = pc.or_(out, mask)
            return out
        if isinstance(node, str):
            return None
        values = node.values if isinstance(node, Text) else node
        nulls = values.null_count
        if nulls == 0:
            return None
        if nulls == len(values):
            return False
        valid = pc.is_valid(values)
        return valid.combine_chunks() if isinstance(valid, pa.ChunkedArray) else valid

    def members(self, members: list[tuple[str, Node]]) -> None:
        before: pa.Array | bool | None = False  # some earlier member present: None = always, False = never
        for key, node in members:
            name = json.dumps(key, ensure_ascii=False) + ":"
            if before is None:
                prefix: Piece = "," + name
            elif before is False:
                prefix = name
            else:
                prefix = pc.if_else(before, "," + name, name)
            present = self.member(prefix, node)
            if present is None or before is None:
                before = None
            elif present is not False:
                before = present if before is False else pc.or_(before, present)

    def member(self, prefix: Piece, node: Node) -> pa.Array | bool | None:
        if isinstance(node, Obj):
            if isinstance(prefix, str) or not node.omit_empty:
                if node.omit_empty:
                    return self.obj(node, prefix)
                self.add(prefix)
                return self.obj(node, None)
            present = self.presence(node)
            if present is False:
                return False
            # a dynamic comma before an object that may be absent: fold it into the opening
            opening = _join(prefix, "{")
            if present is not None:
                opening = pc.if_else(present, opening, "")
            self.add(opening)
            self.members(node.members)
            self.add("}" if present is None else pc.if_else(present, "}", ""))
            return present
        if isinstance(node, str):
            self.add(prefix, json.dumps(node, ensure_ascii=False))
            return None
        present = self.presence(node)
        if present is False:
            return False
        if isinstance(node, Text):
            text = escaped(node.values, safe=node.safe)
            if present is None:
                self.add(prefix, '"', text, '"')
            else:
                self.add(pc.coalesce(pc.binary_join_element_wise(prefix, '"', text, '"', ""), ""))
            return present
        frag = _as_string_array(node)
        if present is None:
            self.add(prefix, frag)
        else:
            self.add(pc.coalesce(pc.binary_join_element_wise(prefix, frag, ""), ""))
        return present


def _join(*pieces: Piece) -> Piece:
    if all(isinstance(p, str) for p in pieces):
        return "".join(pieces)  # type: ignore[arg-type]
    return pc.binary_join_element_wise(*pieces, "")


def render(obj: Obj, n: int) -> pa.Array:
    """One JSON object text per row (n rows); with `obj.omit_empty`, null where no member is present."""
    builder = _Builder(n)
    present = builder.obj(obj, None)
    pieces = builder.pieces
    if all(isinstance(p, str) for p in pieces):
        out = pa.array(["".join(pieces)] * n, pa.string())  # type: ignore[arg-type]
    else:
        out = pc.binary_join_element_wise(*pieces, "")
    if present is not None:
        out = pc.if_else(present, out, _NULL_STRING)
    return out
