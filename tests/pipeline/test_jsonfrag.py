"""jsonfrag: JSON text built column-wise must be valid JSON that round-trips, byte-equal to json.dumps."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from creator_sync.pipeline.jsonfrag import (
    Obj,
    Text,
    escaped,
    json_object,
    number_literal,
    render,
    string_literal,
)

NASTY = [
    'say "hi"',
    "back\\slash",
    "\\",
    '"',
    "tab\there",
    "nl\nx\r\n",
    "\b\f",
    "".join(chr(c) for c in range(0x20)),
    "del\x7f",
    "ünïcødé ✓ 𝄞",
    "line\u2028sep\u2029",
    "",
    'mix "\\\n\x01"',
    "plain text",
]


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("value", NASTY)
def test_string_literal_escapes_like_json_dumps(value):
    out = string_literal(pa.array([value, None, "safe"])).to_pylist()
    assert out == [dumps(value), None, '"safe"']
    assert json.loads(out[0]) == value


def test_only_the_rows_that_need_escaping_are_rewritten():
    # mostly safe rows with a few nasty ones: the masked path (replace_with_mask)
    values = [f"row {i}" for i in range(1000)]
    for i, nasty in enumerate(NASTY):
        values[i * 70] = nasty
    values[5] = None
    out = string_literal(pa.array(values)).to_pylist()
    assert out == [None if v is None else dumps(v) for v in values]
    # many nasty rows: the whole column is escaped
    values = NASTY * 50
    assert string_literal(pa.array(values)).to_pylist() == [dumps(v) for v in values]


def test_sliced_and_chunked_input():
    arr = pa.array(["a", 'b"', "c\\", "d", "e\n"])
    assert string_literal(arr.slice(1, 3)).to_pylist() == [dumps('b"'), dumps("c\\"), dumps("d")]
    assert string_literal(arr.slice(3, 1)).to_pylist() == ['"d"']
    chunked = pa.chunked_array([arr.slice(0, 2), arr.slice(2)])
    assert string_literal(chunked).to_pylist() == [dumps(v) for v in arr.to_pylist()]


def test_bytes_under_a_null_slot_do_not_change_the_result():
    # value 1 is null but its (ignored) bytes contain a quote: a false alarm, still exact
    data = pa.py_buffer(b'ab"cd')
    offsets = pa.py_buffer(pa.array([0, 2, 3, 5], pa.int32()).buffers()[1])
    validity = pa.py_buffer(bytes([0b101]))
    arr = pa.Array.from_buffers(pa.string(), 3, [validity, offsets, data], null_count=1)
    assert string_literal(arr).to_pylist() == ['"ab"', None, '"cd"']


def test_safe_skips_the_check_for_values_known_to_be_clean():
    arr = pa.array(["2024-05-01T10:00:00Z", None])
    assert escaped(arr, safe=True).to_pylist() == ["2024-05-01T10:00:00Z", None]
    assert string_literal(arr, safe=True).to_pylist() == ['"2024-05-01T10:00:00Z"', None]


def test_number_literal():
    arr = pa.array([1.0, None, float("nan"), float("inf"), 2.6, -3.0])
    assert number_literal(arr, integer=True).to_pylist() == ["1", None, None, None, "3", "-3"]


def _reference(obj: Obj, row: int):
    """The object as a Python dict for one row (None when omitted), built from the same inputs."""
    out = {}
    for key, node in obj.members:
        if isinstance(node, Obj):
            value = _reference(node, row)
        elif isinstance(node, Text):
            value = node.values[row].as_py()
        elif isinstance(node, str):
            value = node
        else:
            frag = node[row].as_py()
            value = None if frag is None else json.loads(frag)
        if value is not None:
            out[key] = value
    if obj.omit_empty and not out:
        return None
    return out


def _random_obj(rng: random.Random, n: int, depth: int = 0) -> Obj:
    members = []
    for i in range(rng.randint(0 if depth else 1, 5)):
        kind = rng.choice(["text", "text", "num", "obj", "const"] if depth < 2 else ["text", "num", "const"])
        null_rate = rng.choice([0.0, 0.0, 0.3, 0.9, 1.0])
        nulls = [rng.random() < null_rate for _ in range(n)]
        if kind == "obj":
            node = _random_obj(rng, n, depth + 1)
        elif kind == "text":
            values = [None if nulls[r] else rng.choice([*NASTY, "x", "y z"]) for r in range(n)]
            node = Text(pa.array(values, pa.string()))
        elif kind == "num":
            values = [None if nulls[r] else rng.randint(-5, 10**6) for r in range(n)]
            node = number_literal(pa.array(values, pa.float64()), integer=True)
        else:
            node = rng.choice(["content_published", 'we"ird\n'])
        members.append((f"k{depth}_{i}", node))
    return Obj(members, omit_empty=rng.random() < 0.7)


@pytest.mark.parametrize("seed", range(60))
def test_render_equals_json_dumps_of_the_present_members(seed):
    rng = random.Random(seed)
    n = 40
    obj = _random_obj(rng, n)
    out = render(obj, n).to_pylist()
    for row, text in enumerate(out):
        expected = _reference(obj, row)
        if expected is None:
            assert text is None
        else:
            assert text == dumps(expected)
            assert json.loads(text) == expected


def test_leading_optional_members_get_their_commas_right():
    a = pa.array(['"a"', None, None, None])
    b = pa.array(['"b"', '"b"', None, None])
    inner = Obj([("x", pa.array([None, None, "1", None]))], omit_empty=True)
    obj = Obj([("a", a), ("b", b), ("inner", inner), ("c", "k")], omit_empty=True)
    assert render(obj, 4).to_pylist() == [
        '{"a":"a","b":"b","c":"k"}',
        '{"b":"b","c":"k"}',
        '{"inner":{"x":1},"c":"k"}',
        '{"c":"k"}',
    ]
    obj = Obj([("a", a), ("inner", inner)], omit_empty=True)
    assert render(obj, 4).to_pylist() == ['{"a":"a"}', None, '{"inner":{"x":1}}', None]


def test_json_object_compat():
    frag = pa.array(['"v"', None])
    assert json_object([("k", frag)]).to_pylist() == ['{"k":"v"}', "{}"]
    assert json_object([("k", frag)], empty_as_null=True).to_pylist() == ['{"k":"v"}', None]
    nested = json_object([("k", frag)], empty_as_null=True)
    assert json_object([("a", pa.array(["1", "2"])), ("o", nested)]).to_pylist() == [
        '{"a":1,"o":{"k":"v"}}',
        '{"a":2}',
    ]


def test_chunked_members_render():
    col = pa.chunked_array([pa.array(['a"', None]), pa.array(["c"])])
    assert render(Obj([("t", Text(col))]), 3).to_pylist() == ['{"t":"a\\""}', "{}", '{"t":"c"}']
    assert pc.all(pc.is_valid(render(Obj([("t", Text(col))]), 3))).as_py()


@pytest.mark.parametrize(
    "values",
    [[0, 1, None, -5, 2**53, -(2**53)], [None, None], []],
)
def test_integer_columns_render_like_number_literal(values):
    from creator_sync.pipeline.events import _fragment, param_values
    from creator_sync.pipeline.mapping import Param

    param = Param(name="like_count", column="n", type="integer")
    table = pa.table({"n": pa.array(values, pa.int64())})
    fast = _fragment(param_values(table, param), param, table["n"])
    assert (
        pc.cast(fast, pa.string()).to_pylist()
        == number_literal(param_values(table, param), integer=True).to_pylist()
    )
