"""The session's answers kept between launches (opt-in): a small JSON file, no Qt.

Each entry is a photo's path and its answer (the :class:`~snakeid_desktop.results.FileResult`,
prediction included). Never pixels, and never a position: answers carry only the country code
they assumed, as results do everywhere. The file lives in ``paths.user_data_dir()`` and is written
atomically (a temporary file renamed over it), so a crash mid-write leaves the old one. A file that
cannot be read or makes no sense is ignored with a log line: history is a convenience.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from . import paths
from .request_queue import PathSource
from .results import Candidate, FileResult, Prediction

log = logging.getLogger(__name__)

HISTORY_FILE = "session-history.json"
FORMAT_VERSION = 1


def default_history_path() -> Path:
    return paths.user_data_dir() / HISTORY_FILE


def result_to_dict(result: FileResult) -> dict:
    """Everything a FileResult holds, as JSON-ready data (round-trips through :func:`result_from_dict`)."""
    pred = result.prediction
    return {
        "path": result.path,
        "prediction": None
        if pred is None
        else {
            "verdict": pred.verdict,
            "risk": pred.risk,
            "top": [asdict(c) for c in pred.top],
            "not_snake_probability": pred.not_snake_probability,
            "venom_probability": pred.venom_probability,
            "risky": [asdict(c) for c in pred.risky],
            "country": pred.country,
            "country_source": pred.country_source,
        },
        "error": result.error,
        "error_kind": None if result.error_kind is None else str(result.error_kind),
        "warnings": list(result.warnings),
    }


def result_from_dict(data: dict) -> FileResult:
    """Raises KeyError/TypeError/ValueError on data that is not a stored result."""
    raw = data["prediction"]
    prediction = None
    if raw is not None:
        venom = raw["venom_probability"]
        prediction = Prediction(
            verdict=str(raw["verdict"]),
            risk=bool(raw["risk"]),
            top=tuple(Candidate(**c) for c in raw["top"]),
            not_snake_probability=float(raw["not_snake_probability"]),
            venom_probability=None if venom is None else float(venom),
            risky=tuple(Candidate(**c) for c in raw["risky"]),
            country=raw["country"],
            country_source=raw["country_source"],
        )
    warnings = data["warnings"]
    if not isinstance(warnings, list):
        raise TypeError("warnings is not a list")
    return FileResult(
        path=str(data["path"]),
        prediction=prediction,
        error=data["error"],
        error_kind=data["error_kind"],
        warnings=[str(w) for w in warnings],
    )


def entries_of(session, *, after_key: int = 0) -> list[tuple[str, FileResult]]:
    """The session's answered photos that have a file, as shown (top first). Pasted pictures have
    no file to show again, and a photo still waiting has no answer: both are left out. Photos with
    keys up to ``after_key`` were listed when the history was cleared: left out too."""
    entries = []
    for key in session.order:
        photo = session.photos[key]
        if key <= after_key or not isinstance(photo.source, PathSource):
            continue
        result = photo.outcome.result if photo.outcome is not None else photo.known_result
        if result is not None and (result.prediction is not None or result.error is not None):
            entries.append((photo.source.path, result))
    return entries


def save(path: Path, entries: Sequence[tuple[str, FileResult]], current: str | None = None) -> None:
    """Write the entries (top first) and the current photo's path, atomically. Raises OSError."""
    data = {
        "version": FORMAT_VERSION,
        "current": current,
        "photos": [{"file": file, "result": result_to_dict(result)} for file, result in entries],
    }
    # ASCII escapes keep a file name that is not valid UTF-8 exact (its surrogate escapes survive).
    text = json.dumps(data, ensure_ascii=True, indent=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".history-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load(path: Path, limit: int | None = None) -> tuple[list[tuple[str, FileResult]], str | None]:
    """(entries top first, current path or None). A missing file is an empty history; a file that
    cannot be read or parsed, or from a newer release, is ignored (logged). Entries that make no
    sense are skipped one by one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("history file %s ignored: could not read it: %s", path, exc)
        return [], None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("photos"), list):
            raise ValueError("not a history file")
        version = data.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"unknown format version {version!r}")
    except ValueError as exc:
        log.warning("history file %s ignored: %s", path, exc)
        return [], None
    entries = []
    for item in data["photos"]:
        try:
            file = item["file"]
            if not isinstance(file, str) or not file:
                raise TypeError("no file name")
            entries.append((file, result_from_dict(item["result"])))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("history file %s: an entry was skipped: %r", path, exc)
    if limit is not None:
        entries = entries[:limit]
    current = data.get("current")
    return entries, current if isinstance(current, str) else None


def delete(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
