"""CSV/JSON export: contents parse back to the results, writes are atomic."""

from __future__ import annotations

import json

import pytest

from snakeid_desktop.export import (
    CSV_COLUMNS,
    CsvResultWriter,
    JsonResultWriter,
    export_results,
    read_csv,
)
from snakeid_desktop.results import Candidate, FileResult, Prediction


def sample_results() -> list[FileResult]:
    viper = Candidate("bitis-arietans", "Bitis arietans", "Puff adder", 0.81, "yes")
    harmless = Candidate("lycodon-capucinus", "Lycodon capucinus", "Common wolf snake", 0.12, "no")
    mamba = Candidate("dendroaspis-polylepis", "Dendroaspis polylepis", "Black mamba", 0.04, "yes")
    return [
        FileResult("/photos/a, with comma.jpg", Prediction("species", True, (viper, harmless, mamba), 0.01)),
        FileResult(
            '/photos/b "quoted"\nnewline.png',
            Prediction("unsure", False, (harmless, viper), 0.2),
            warnings=["The file is truncated; only part of it was decoded.", "second warning"],
        ),
        FileResult("/photos/ünïcode 蛇.jpg", Prediction("not_snake", False, (harmless,), 0.93)),
        FileResult("/photos/broken.jpg", error="/photos/broken.jpg: not an image file.", error_kind="not_image"),
    ]


def test_csv_round_trip(tmp_path):
    results = sample_results()
    out = tmp_path / "out.csv"
    assert export_results(results, csv_path=out) == 4
    rows = read_csv(out)
    assert list(rows[0].keys()) == list(CSV_COLUMNS)
    assert [r["path"] for r in rows] == [r.path for r in results]
    first = rows[0]
    assert first["status"] == "ok" and first["error"] == "" and first["verdict"] == "species"
    assert first["risk"] == "true"
    assert (first["species"], first["scientific_name"], first["common_name"]) == (
        "bitis-arietans", "Bitis arietans", "Puff adder")
    assert float(first["probability"]) == pytest.approx(0.81)
    assert first["venomous"] == "yes"
    assert first["top_k"] == "bitis-arietans:0.810000;lycodon-capucinus:0.120000;dendroaspis-polylepis:0.040000"
    assert rows[1]["warnings"] == "The file is truncated; only part of it was decoded. | second warning"
    assert rows[1]["risk"] == "false" and rows[1]["verdict"] == "unsure"
    assert rows[2]["verdict"] == "not_snake"
    broken = rows[3]
    assert broken["status"] == "error" and broken["error"] == "/photos/broken.jpg: not an image file."
    assert broken["verdict"] == broken["species"] == broken["probability"] == broken["top_k"] == ""
    assert broken["risk"] == "false"


def test_verdict_probability_is_the_probability_behind_the_verdict(tmp_path):
    results = sample_results() + [
        FileResult("/photos/iceland.jpg", Prediction("outside_coverage", True, (), 0.3, None, country="IS")),
    ]
    export_results(results, csv_path=tmp_path / "out.csv")
    rows = read_csv(tmp_path / "out.csv")
    assert list(CSV_COLUMNS[-1:]) == ["verdict_probability"]  # added at the end: positions stay
    assert [r["verdict_probability"] for r in rows] == ["0.810000", "0.120000", "0.930000", "", ""]
    not_snake = rows[2]
    # The species columns still name the top species, whatever the verdict; the verdict's own number differs.
    assert (not_snake["verdict"], not_snake["species"], not_snake["probability"]) == (
        "not_snake", "lycodon-capucinus", "0.120000")
    assert rows[4]["species"] == rows[4]["probability"] == rows[4]["venom_probability"] == ""


def test_an_export_from_before_verdict_probability_may_be_replaced(tmp_path):
    old = tmp_path / "old.csv"
    old.write_bytes(",".join(CSV_COLUMNS[:-1]).encode() + b"\r\n/photos/a.jpg,ok,,species\r\n")
    assert is_replaceable_export(old)


def test_json_round_trip_is_the_cli_schema(tmp_path):
    results = sample_results()
    out = tmp_path / "out.json"
    export_results(results, json_path=out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data == [r.to_json() for r in results]
    for obj in data:
        assert set(obj) == {"path", "status", "error", "verdict", "risk", "venom_probability", "country", "country_source", "top", "warnings"}


def test_empty_exports_are_valid(tmp_path):
    export_results([], csv_path=tmp_path / "e.csv", json_path=tmp_path / "e.json")
    assert read_csv(tmp_path / "e.csv") == []
    assert (tmp_path / "e.csv").read_text().strip() == ",".join(CSV_COLUMNS)
    assert json.loads((tmp_path / "e.json").read_text()) == []


def test_failed_export_leaves_the_previous_file_and_no_temporaries(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("previous export\n")

    def exploding():
        yield from sample_results()[:2]
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        export_results(exploding(), csv_path=out, json_path=tmp_path / "out.json")
    assert out.read_text() == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_target_appears_only_on_commit(tmp_path):
    out = tmp_path / "live.json"
    with JsonResultWriter(out) as writer:
        writer.write(sample_results()[0])
        assert not out.exists()
    assert json.loads(out.read_text())[0]["path"] == "/photos/a, with comma.jpg"
    writer = CsvResultWriter(tmp_path / "aborted.csv")
    writer.write(sample_results()[1])
    writer.abort()
    assert list(tmp_path.iterdir()) == [out]


def test_missing_folder_fails_before_any_work(tmp_path):
    with pytest.raises(FileNotFoundError):
        CsvResultWriter(tmp_path / "no" / "such" / "folder.csv")


# ---------------------------------------------------------------- outputs never destroy anything

import errno  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from snakeid_desktop import export  # noqa: E402
from snakeid_desktop.export import (  # noqa: E402
    _OLDER_CSV_HEADERS,
    FORMULA_TRIGGERS,
    is_replaceable_export,
    remove_stale_temps,
)


class _FailingFile:
    """A temporary file on a disk that fills up after ``room`` characters (or fails in fsync/close)."""

    def __init__(self, real, room: int, err: int):
        self._real, self._room, self._err = real, room, err
        self.pending = False

    def write(self, text):
        if len(text) > self._room:
            self.pending = True
            raise OSError(self._err, os.strerror(self._err))
        self._room -= len(text)
        return self._real.write(text)

    def flush(self):
        if self.pending:
            raise OSError(self._err, os.strerror(self._err))
        self._real.flush()

    def close(self):
        try:
            self.flush()  # like a real buffered file: closing flushes, and fails again
        finally:
            self._real.close()

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.mark.parametrize("where", ["write", "fsync", "close"])
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
def test_a_full_disk_keeps_both_earlier_exports_and_leaves_no_temporaries(tmp_path, monkeypatch, where, err):
    out_csv, out_json = tmp_path / "out.csv", tmp_path / "out.json"
    export_results(sample_results()[:1], csv_path=out_csv, json_path=out_json)
    before = {p: p.read_bytes() for p in (out_csv, out_json)}
    real_open = export._open_text
    opened = []

    def open_text(fd, newline):
        room = 300 if where == "write" and opened else 10**9  # the JSON file fills the disk
        f = _FailingFile(real_open(fd, newline), room, err)
        opened.append(f)
        return f

    monkeypatch.setattr(export, "_open_text", open_text)
    if where == "fsync":
        real_fsync = os.fsync
        calls = []

        def fsync(fd):
            calls.append(fd)
            if len(calls) == 2:
                raise OSError(err, os.strerror(err))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    if where == "close":
        def fail_on_close(f=None):
            raise OSError(err, os.strerror(err))
        monkeypatch.setattr(_FailingFile, "close", lambda self: (self._real.close(), fail_on_close()))

    with pytest.raises(OSError) as info:
        export_results(sample_results() * 20, csv_path=out_csv, json_path=out_json)
    assert info.value.errno == err
    assert {p: p.read_bytes() for p in (out_csv, out_json)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.json"]


formula_cells = st.builds(lambda trigger, rest: trigger + rest, st.sampled_from(FORMULA_TRIGGERS),
                          st.text(st.characters(exclude_categories=("Cs",)), max_size=30))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=formula_cells, error=formula_cells)
def test_csv_cells_cannot_run_as_formulas_but_json_stays_exact(tmp_path_factory, name, error):
    out = tmp_path_factory.mktemp("formula")
    path = f"{name}.jpg"
    results = [FileResult(path, error=error, error_kind="not_image"),
               FileResult(path, Prediction("species", True, sample_results()[0].prediction.top, 0.0),
                          warnings=[error])]
    export_results(results, csv_path=out / "r.csv", json_path=out / "r.json")
    rows = read_csv(out / "r.csv")
    for row in rows:
        for value in row.values():
            assert not value.startswith(FORMULA_TRIGGERS)
    assert rows[0]["path"] == "'" + path and rows[0]["error"] == "'" + error
    assert rows[1]["warnings"] == "'" + error
    assert [o["path"] for o in json.loads((out / "r.json").read_text(encoding="utf-8"))] == [path, path]


def test_a_symlinked_output_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "target.csv").write_text(",".join(CSV_COLUMNS) + "\n")
    link = tmp_path / "out.csv"
    link.symlink_to("real/target.csv")
    export_results(sample_results(), csv_path=link)
    assert link.is_symlink() and os.readlink(link) == "real/target.csv"
    assert len(read_csv(real / "target.csv")) == 4
    assert sorted(p.name for p in real.iterdir()) == ["target.csv"]


def test_stale_temporaries_of_a_killed_run_are_removed_and_nothing_else(tmp_path):
    out = tmp_path / "out.csv"
    header = (",".join(CSV_COLUMNS) + "\r\n").encode()
    stale = [tmp_path / ".out.csv.k1ll3d_0.part", tmp_path / ".out.csv.abcdefgh.part"]
    stale[0].write_bytes(header + b"/photos/a.jpg,ok")
    stale[1].write_bytes(b"")  # killed before the first flush
    keep = {
        tmp_path / ".out.csv.notours!.part": header,          # not mkstemp's alphabet
        tmp_path / ".out.csv.abcdefgh.part.bak": header,      # other suffix
        tmp_path / ".other.csv.abcdefgh.part": header,        # another export's
        tmp_path / ".out.csv.zzzzzzzz.part": b"my own notes", # not shaped like our export
        tmp_path / ".out.csv.inuse___.part": header,          # a live writer holds it
    }
    for path, data in keep.items():
        path.write_bytes(data)
    live = open(tmp_path / ".out.csv.inuse___.part", "rb")
    import fcntl

    fcntl.flock(live.fileno(), fcntl.LOCK_EX)
    try:
        export_results(sample_results(), csv_path=out)
    finally:
        live.close()
    assert not any(p.exists() for p in stale)
    assert {p: p.read_bytes() for p in keep} == keep
    assert len(read_csv(out)) == 4
    assert remove_stale_temps(out) == [tmp_path / ".out.csv.inuse___.part"]  # unlocked now


def test_a_live_writer_locks_its_temporary_against_cleanup(tmp_path):
    writer = CsvResultWriter(tmp_path / "out.csv")
    writer.write(sample_results()[0])
    writer._fh.flush()
    assert remove_stale_temps(tmp_path / "out.csv") == []
    writer.commit()
    assert len(read_csv(tmp_path / "out.csv")) == 1


def test_our_exports_are_recognised_and_other_files_are_not(tmp_path):
    export_results(sample_results(), csv_path=tmp_path / "a.csv", json_path=tmp_path / "a.json")
    export_results([], csv_path=tmp_path / "e.csv", json_path=tmp_path / "e.json")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "classify.json").write_text(json.dumps([r.to_json() for r in sample_results()], indent=2))
    for name in ("a.csv", "a.json", "e.csv", "e.json", "empty", "classify.json"):
        assert is_replaceable_export(tmp_path / name), name
    others = {
        "photo.jpg": b"\xff\xd8\xff\xe0" + bytes(100),
        "sheet.csv": b"name,species\nIMG_1,adder\n",
        "header-only-prefix.csv": ",".join(CSV_COLUMNS[:5]).encode() + b"\n",
        "list.json": b'[{"name": "x"}]',
        "object.json": b'{"path": "x"}',
    }
    for name, data in others.items():
        (tmp_path / name).write_bytes(data)
        assert not is_replaceable_export(tmp_path / name), name
    assert not is_replaceable_export(tmp_path / "missing.csv")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=300))
def test_arbitrary_bytes_are_not_taken_for_an_export(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("sniff") / "f"
    path.write_bytes(data)
    headers = (",".join(CSV_COLUMNS).encode(), *_OLDER_CSV_HEADERS)
    looks_ours = any(data.startswith(h) for h in headers) or data.lstrip().startswith(b"[")
    if not looks_ours:
        assert not is_replaceable_export(path)


def test_a_fifo_output_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    export_results(sample_results(), csv_path=fifo)
    reader.join(10)
    assert received and received[0].startswith(",".join(CSV_COLUMNS).encode())
    import stat

    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["pipe.csv"]
