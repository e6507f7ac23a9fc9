"""The history file between launches, without Qt: what it keeps, and files it must survive."""

from __future__ import annotations

import json
import logging

import pytest

from snakeid_desktop import history
from snakeid_desktop.request_queue import BytesSource, PathSource
from snakeid_desktop.results import Candidate, FileResult, Prediction
from snakeid_desktop.session import Session
from tests.test_session import FakeOutcome, FakeRequests

ADDER = Candidate("bitis-arietans", "Bitis arietans", "Puff adder", 0.61, "yes")
TWIG = Candidate("thelotornis-capensis", "Thelotornis capensis", "Twig snake", 0.2, "yes")
HOUSE = Candidate("lycodon-capucinus", "Lycodon capucinus", "Common wolf snake", 0.1, "no")


def answered(path: str) -> FileResult:
    prediction = Prediction(
        verdict="species", risk=True, top=(ADDER, TWIG, HOUSE), not_snake_probability=0.03,
        venom_probability=0.81, risky=(ADDER, TWIG), country="ZA", country_source="gps",
    )
    return FileResult(path=path, prediction=prediction, warnings=['"x.jpg" has damaged orientation data'])


def test_a_result_round_trips_with_everything_a_prediction_holds():
    for result in (
        answered("/photos/adder.jpg"),
        FileResult(path="/photos/broken.jpg", error="This photo could not be read", error_kind="corrupt"),
        FileResult(path="/photos/odd-\udcff.jpg", prediction=answered("x").prediction),  # not UTF-8 on disk
        FileResult(path="/p.jpg", prediction=Prediction("outside_coverage", True, (), 0.0, None, (), "IS", "option")),
    ):
        data = json.loads(json.dumps(history.result_to_dict(result), ensure_ascii=True))
        assert history.result_from_dict(data) == result


def test_save_then_load_keeps_order_and_current_and_no_pixels_or_position(tmp_path):
    path = tmp_path / "data" / "history.json"
    entries = [(f"/photos/{n}.jpg", answered(f"/photos/{n}.jpg")) for n in "abc"]
    history.save(path, entries, current="/photos/b.jpg")
    assert history.load(path) == (entries, "/photos/b.jpg")
    assert history.load(path, limit=2) == (entries[:2], "/photos/b.jpg")
    text = path.read_text()
    assert "ZA" in text and "lat" not in text.lower() and "gps_position" not in text
    assert len(text) < 10_000  # answers only: three photos' worth of pixels would be megabytes
    assert [p.name for p in path.parent.iterdir()] == ["history.json"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "history.json"
    history.save(path, [("/a.jpg", answered("/a.jpg"))])
    monkeypatch.setattr(history.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        history.save(path, [])
    assert len(history.load(path)[0]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[1, 2]", b'{"version": 1}', b'{"version": 99, "photos": []}', b"\xff\xfe\x00garbage",
     b'{"version": "1", "photos": []}'],
)
def test_a_corrupt_file_is_ignored_with_a_log_line(tmp_path, caplog, content):
    path = tmp_path / "history.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="snakeid_desktop.history"):
        assert history.load(path) == ([], None)
    assert "history file" in caplog.text and "ignored" in caplog.text


def test_bad_entries_are_skipped_one_by_one(tmp_path, caplog):
    path = tmp_path / "history.json"
    good = {"file": "/a.jpg", "result": history.result_to_dict(answered("/a.jpg"))}
    path.write_text(json.dumps({"version": 1, "photos": [good, {"file": "/b.jpg"}, {"result": {}}, 7, good], "current": 3}))
    entries, current = history.load(path)
    assert [file for file, _ in entries] == ["/a.jpg", "/a.jpg"] and current is None
    assert caplog.text.count("an entry was skipped") == 3


def test_a_missing_file_is_an_empty_history_and_delete_is_quiet(tmp_path):
    assert history.load(tmp_path / "none.json") == ([], None)
    history.delete(tmp_path / "none.json")


def test_the_default_file_is_in_the_data_folder(snakeid_home):
    assert history.default_history_path().parent == snakeid_home / "data"


def test_entries_are_the_answered_photos_with_files_as_shown():
    fake = FakeRequests()
    session = Session(fake)
    session.add([PathSource("/p/a.jpg"), BytesSource(b"x", "pasted image"), PathSource("/p/b.jpg")])
    for request_id in list(session.live_requests()):  # the worker's answers, as the model gives them
        name = fake.submitted[request_id][0].name
        session.deliver(FakeOutcome(request_id, name, answered(name), "pixels", "thumb"))
    (waiting,) = session.add([PathSource("/p/c.jpg")])
    known = answered("/p/d.jpg")
    session.add_known([(PathSource("/p/d.jpg"), known)])  # its pixels are not back yet: the answer is
    entries = history.entries_of(session)
    assert [file for file, _ in entries] == ["/p/d.jpg", "/p/a.jpg", "/p/b.jpg"]
    assert entries[0][1] is known and entries[1][1].prediction.country == "ZA"
    assert history.entries_of(session, after_key=3) == entries[:1]  # listed before a clear: left out
