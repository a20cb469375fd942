"""JsonText: JSON walked from a file a window at a time decodes what raw_decode on the
whole text decodes, wherever the windows are cut, and says where an error is as if the
text had been read whole."""

from __future__ import annotations

import io
import json

import pytest
from needle.redact import jsonstream
from needle.redact.jsonstream import EncodingError, JsonText, JsonTextError, decoded
from needle.redact.scan import Listing

VALUES = [
    1.5,
    -12,
    2e5,
    3.25e-7,
    "w\u00e9b-7d4b9c8f6d-x2x7q \U0001f600",
    {"a": [1, 2, {"b": None}], "c": "x,y]"},
    True,
    None,
    [],
    {},
    123456789012345678901234567890,
]


def walk_array(text: JsonText) -> list[object]:
    """The items of the array at the cursor, as manifest.py walks "nodes"."""
    assert text.take("[")
    return list(text.items())


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 64])
@pytest.mark.parametrize("spaced", [False, True])
def test_any_cut_of_the_windows_decodes_the_same_values(monkeypatch, chunk, spaced) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    document = json.dumps(VALUES, ensure_ascii=False, indent=3 if spaced else None)
    data = document.encode()
    text = JsonText(decoded(io.BytesIO(data)))
    assert walk_array(text) == VALUES
    text.skip_space()
    assert text.peek() == "" and text.position == len(document)


@pytest.mark.parametrize("chunk", [1, 4, 1 << 20])
def test_an_error_is_placed_in_the_whole_text(monkeypatch, chunk) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    document = '[1, 2, {"a": 3,, "b": 4}]'
    with pytest.raises(json.JSONDecodeError) as whole:
        json.loads(document)
    with pytest.raises(JsonTextError) as walked:
        walk_array(JsonText(decoded(io.BytesIO(document.encode()))))
    assert (walked.value.msg, walked.value.pos) == (whole.value.msg, whole.value.pos)


@pytest.mark.parametrize("chunk", [1, 1 << 20])
def test_items_want_commas_and_let_a_trailing_one_through_when_told(monkeypatch, chunk) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)

    def items(document: str, trailing_comma: bool) -> list[object]:
        text = JsonText(decoded(io.BytesIO(document.encode())))
        assert text.take("[")
        return list(text.items(trailing_comma))

    assert items("[1 , 2 ,\n]", trailing_comma=True) == [1, 2]
    with pytest.raises(JsonTextError, match="Expecting value at character 9"):
        items("[1 , 2 ,\n]", trailing_comma=False)
    with pytest.raises(JsonTextError, match="expected ',' at character 3"):
        items("[1 2]", trailing_comma=True)


@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 20])
def test_a_bad_byte_is_placed_in_the_whole_file(monkeypatch, chunk) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    data = '["\u00e9\u00e9\u20ac", "x'.encode() + b"\xff" + b'"]'
    with pytest.raises(UnicodeDecodeError) as whole:
        data.decode("utf-8")
    with pytest.raises(EncodingError) as pieces:
        "".join(decoded(io.BytesIO(data)))
    assert pieces.value.byte == whole.value.start


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
@pytest.mark.parametrize(
    "document",
    [
        '{"apiVersion": "v1", "items": [{"a": 1}, {"b": [2]}], "kind": "List"}',
        '{"items": []}',
        '{"items": [1, 2, ]}',  # what Listing has always let through
        '{"items": [1], "items": [2]}',  # two "items": read whole
        '{"items": [1], "kind": "List"} {}',
        '{"items": [1, 2}',
        '{"kind": "List"}',
        "[1, 2]",
        "",
    ],
)
def test_a_listing_read_from_a_file_is_what_it_is_read_from_bytes(
    monkeypatch, tmp_path, chunk, document
) -> None:
    data = document.encode()
    from_bytes = Listing.read(data)
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    path = tmp_path / "list.json"
    path.write_bytes(data)
    from_file = Listing.read(path)
    assert (from_file is None) == (from_bytes is None)
    if from_bytes is not None and from_file is not None:
        assert from_file.shell == from_bytes.shell
        assert list(from_file.items()) == list(from_bytes.items())
        assert {**from_bytes.shell, "items": list(from_bytes.items())} == json.loads(
            document.replace(", ]", "]")
        )


def test_a_listing_in_utf16_is_read_as_json_reads_it(tmp_path) -> None:
    document = {"items": [{"name": "caf\u00e9"}], "kind": "List"}
    path = tmp_path / "list.json"
    path.write_bytes(json.dumps(document, ensure_ascii=False).encode("utf-16"))
    listed = Listing.read(path)
    assert listed is not None and list(listed.items()) == document["items"]
