"""JSON from unauthenticated or vendor-controlled bodies, with its nesting depth bounded.

Python's parser recurses once per nested array or object; a body of a few thousand ``[`` raises
RecursionError deep inside it. ``loads`` measures the depth first (strings removed, so brackets inside
them do not count) and refuses anything deeper than ``max_depth`` with a ValueError the endpoints answer
with 400.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32  # a webhook event is 3 levels deep, an Upsert callback about 6
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class TooDeep(ValueError):
    pass


def depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (0 for a scalar)."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", body))
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def loads(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for bodies nested at most ``max_depth`` levels; TooDeep (a ValueError) otherwise."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if depth(raw) > max_depth:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise TooDeep(f"JSON nested deeper than {max_depth} levels") from None
