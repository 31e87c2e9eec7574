from __future__ import annotations

import json
from pathlib import Path

import pytest

from esv.errors import EsvError, WorkspaceFileError
from esv.jsonfile import depth_exceeds, load_json, parse_json, read_text, unencodable_text
from esv.resolver import MAX_DEPTH


def test_parse_and_normalise_aliases() -> None:
    assert parse_json('{"a": "&<esv.x.y>"}', relpath="config/a.json") == {"a": "&{esv.x.y}"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"a": 1,}',
            "invalid JSON: Expecting property name enclosed in double quotes at line 1, column 9",
        ),
        ("{\n\n  x", "at line 3, column 3"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ("", "Expecting value at line 1, column 1"),
    ],
)
def test_malformed_json(text: str, message: str) -> None:
    with pytest.raises(WorkspaceFileError) as caught:
        parse_json(text, relpath="config/a.json")
    assert message in str(caught.value)
    assert str(caught.value).startswith("config/a.json: ")


def test_ten_thousand_levels_is_a_clear_error() -> None:
    for text in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
        with pytest.raises(WorkspaceFileError, match=f"deeper than {MAX_DEPTH} levels"):
            parse_json(text, relpath="config/deep.json")
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert not depth_exceeds(parse_json(ok, relpath="x"))


def test_fifty_megabyte_config_loads(tmp_path: Path) -> None:
    item = {"host": "&{esv.email.provider.host}", "port": {"$int": "&{esv.port}"}, "pad": "x" * 200}
    doc = {"items": [item] * 200_000}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc))
    assert path.stat().st_size > 50_000_000
    loaded = load_json(path, relpath="config/big.json")
    assert len(loaded["items"]) == 200_000


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceFileError, match="cannot be read"):
        load_json(tmp_path / "missing.json", relpath="config/missing.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\x00")
    with pytest.raises(WorkspaceFileError, match="not UTF-8"):
        load_json(tmp_path / "bin.json", relpath="config/bin.json")


def test_a_directory_cannot_be_read_as_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(WorkspaceFileError) as caught:
        load_json(tmp_path / "dir.json", relpath="config/dir.json")
    assert str(caught.value).splitlines()[0] == "config/dir.json: cannot be read: Is a directory"


@pytest.mark.parametrize("end", [b"\r\n", b"\r", b"\n"])
def test_line_ends_are_read_as_newlines_whatever_they_are(tmp_path: Path, end: bytes) -> None:
    # As a text-mode file reads them: an error names the line a text editor shows.
    path = tmp_path / "x.json"
    path.write_bytes(end.join([b"{", b'  "a": 1,', b'  "b": ]', b"}"]))
    assert read_text(path, relpath="config/x.json") == '{\n  "a": 1,\n  "b": ]\n}'
    with pytest.raises(WorkspaceFileError, match="at line 3, column 8"):
        load_json(path, relpath="config/x.json")


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * 65536])
def test_a_file_is_read_whole_whatever_its_size(tmp_path: Path, size: int) -> None:
    # `size` bytes; an "é" (two bytes) straddles each 64 KiB boundary
    text = "" if size == 0 else "x" + "é" * ((size - 1) // 2) + "y" * ((size - 1) % 2)
    assert len(text.encode()) == size
    path = tmp_path / "x.txt"
    path.write_text(text, encoding="utf-8")
    assert read_text(path, relpath="x.txt") == text


def test_lone_surrogates_are_refused_by_json_path_never_shown() -> None:
    text = r'{"x": "hunter2\ud800b", "y": [1, {"\udc00k": 2}], "ok": "\ud83d\ude00 \u00e9"}'
    with pytest.raises(EsvError) as caught:
        parse_json(text, relpath="config/x.json")
    assert caught.value.exit_code == 3
    assert [(p.location, p.path) for p in caught.value.problems] == [
        ("config/x.json", "x"),
        ("config/x.json", 'y[1]["\\udc00k"]'),
    ]
    message = str(caught.value)
    assert message.startswith("config/x.json: 2 strings are not valid Unicode text")
    assert "the text holds a lone surrogate" in message and "the key holds" in message
    assert "complete pair such as" in message
    assert "hunter2" not in message
    message.encode("utf-8")  # the message itself can be printed
    # complete pairs and plain escapes are fine
    assert parse_json(r'{"ok": "\ud83d\ude00 \u00e9"}', relpath="x") == {"ok": "\U0001f600 é"}
    # a raw lone surrogate handed in as text (not from a file) is refused the same way
    with pytest.raises(EsvError, match="not valid Unicode"):
        parse_json('["a\udfffb"]', relpath="config/y.json")


def test_unencodable_text_walks_keys_and_values_in_order() -> None:
    assert unencodable_text({"a": ["ok", "\ud800"], "\udc00": {"b": "x"}}) == [
        (("a", 1), False),
        (("\udc00",), True),
    ]
    assert unencodable_text(["fine", 1, None, {"k": "v"}]) == []
