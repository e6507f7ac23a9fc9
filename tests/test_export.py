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


def test_json_round_trip_is_the_cli_schema(tmp_path):
    results = sample_results()
    out = tmp_path / "out.json"
    export_results(results, json_path=out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data == [r.to_json() for r in results]
    for obj in data:
        assert set(obj) == {"path", "status", "error", "verdict", "risk", "top", "warnings"}


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
