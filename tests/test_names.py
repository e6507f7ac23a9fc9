"""File names that are not UTF-8, or that hold control characters, in every output."""

from __future__ import annotations

import base64
import json
import os
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snakeid_desktop.export import export_results, read_csv
from snakeid_desktop.names import for_terminal, readable
from snakeid_desktop.results import Candidate, FileResult, Prediction

RESULT_KEYS = {"path", "status", "error", "verdict", "risk", "venom_probability", "country", "country_source", "top", "warnings"}
ADDER = Candidate("bitis-arietans", "Bitis arietans", "Puff adder", 0.9, "yes")

# Any bytes Linux accepts in one name: everything but "/" and NUL, and not "." or "..".
byte_names = st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_")).filter(
    lambda b: b not in (b".", b".."))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=byte_names)
def test_any_byte_name_on_disk_round_trips_through_json_and_csv(tmp_path_factory, name):
    folder = tmp_path_factory.mktemp("names")
    raw = os.path.join(os.fsencode(folder), name + b".jpg")
    with open(raw, "wb") as fh:
        fh.write(b"x")
    (listed,) = os.listdir(folder)  # str, with surrogateescape for undecodable bytes
    path = os.path.join(str(folder), listed)
    assert os.fsencode(path) == raw
    results = [FileResult(path, Prediction("species", True, (ADDER,), 0.0), warnings=[f"{path}: odd"]),
               FileResult(path, error=f'"{path}" is not an image file.', error_kind="not_image")]

    obj = results[0].to_json()
    text = json.dumps(obj, ensure_ascii=False)
    text.encode("utf-8")  # strict: raises on any lone surrogate
    if _is_utf8(raw):
        assert set(obj) == RESULT_KEYS and obj["path"] == path
    else:
        assert set(obj) == RESULT_KEYS | {"path_bytes_b64"}
        assert base64.b64decode(obj["path_bytes_b64"]) == raw
        assert "\\x" in obj["path"]
    assert obj["warnings"] == [readable(results[0].warnings[0])]

    out = tmp_path_factory.mktemp("out")
    assert export_results(results, csv_path=out / "r.csv", json_path=out / "r.json") == 2
    for exported in ("r.csv", "r.json"):
        (out / exported).read_bytes().decode("utf-8")  # always valid UTF-8
    data = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert data == [r.to_json() for r in results]
    rows = read_csv(out / "r.csv")
    assert [r["path"].removeprefix("'") for r in rows] == [readable(path)] * 2


_TERMINAL_UNSAFE = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
       | byte_names.map(os.fsdecode))
def test_for_terminal_leaves_no_control_characters(text):
    shown = for_terminal(text)
    shown.encode("utf-8")
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") or ch in _TERMINAL_UNSAFE for ch in shown)
    # Printable text is unchanged, so ordinary names read as they are.
    if all(unicodedata.category(ch) not in ("Cc", "Cs") and ch not in _TERMINAL_UNSAFE for ch in text):
        assert shown == text


def test_escape_sequences_are_shown_not_sent():
    assert for_terminal("a\x1b]0;pwned\x07b\x9b31m\nc\udcff") == "a\\x1b]0;pwned\\x07b\\x9b31m\\nc\\xff"
    assert readable("keep\x1b[31m exact\udcfe") == "keep\x1b[31m exact\\xfe"  # JSON/CSV keep controls
