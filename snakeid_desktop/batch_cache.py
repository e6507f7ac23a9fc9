"""Resume cache for batch runs: earlier results for files that have not changed since.

A row is reused only when the file's absolute path, size and modification time (ns) and
the model key all match. The model key hashes the bundle's metadata (which holds the
weights' SHA-256, classes, calibration and thresholds), the species taught on this computer,
the top-k and the app version, so a new model, new thresholds, a newly taught species or an app
upgrade never reuse stale verdicts.
Only successful results are stored: errors are often transient (a file being copied,
permissions being fixed) and are cheap to find again.

Location: ``batch-results.sqlite3`` in ``paths.user_cache_dir()`` (``$SNAKEID_CACHE_DIR``, else
``$SNAKEID_HOME/cache``, else the platform's user cache folder from ``platformdirs``). The cache is a
convenience: if it cannot be opened or written, runs go on without it. A damaged file
(found by ``PRAGMA quick_check`` at open, or by a query failing with SQLITE_CORRUPT or
SQLITE_NOTADB later) is our own: it is deleted and a fresh cache started, with one warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__ as app_version
from . import paths
from .names import is_exact_text
from .results import Candidate, FileResult, Prediction

if TYPE_CHECKING:
    from .predictor import Predictor

CACHE_FILE = "batch-results.sqlite3"
_SCHEMA_VERSION = 3  # 2: venom probability, risky candidates and region; 3: taught flag
_DAMAGE_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB; anything else (locked, full disk) is transient
log = logging.getLogger(__name__)


class _Damaged(sqlite3.DatabaseError):
    """quick_check found a damaged page (it reports rather than raises)."""


def _is_damage(exc: sqlite3.Error) -> bool:
    if isinstance(exc, _Damaged):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _DAMAGE_CODES  # extended codes keep the primary one in the low byte
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def default_cache_path() -> Path:
    return paths.user_cache_dir() / CACHE_FILE


def model_key(predictor: "Predictor", top_k: int, country_option: str | None = None) -> str:
    """What a stored answer depends on besides the file: the model, top-k, the app and the region option."""
    meta = json.dumps(predictor.bundle.metadata, sort_keys=True, default=str)
    # Species taught on this computer change the answers as much as a new model does.
    taught = getattr(predictor, "taught_digest", "")
    text = f"{meta}\n{taught}\n{top_k}\n{app_version}\n{_SCHEMA_VERSION}\n{country_option or ''}"
    digest = hashlib.sha256(text.encode()).hexdigest()
    return digest[:32]


def result_to_record(result: FileResult) -> str:
    pred = result.prediction
    assert pred is not None
    return json.dumps(
        {
            "verdict": pred.verdict,
            "risk": pred.risk,
            "not_snake_probability": pred.not_snake_probability,
            "venom_probability": pred.venom_probability,
            "country": pred.country,
            "country_source": pred.country_source,
            "top": [[c.species, c.scientific_name, c.common_name, c.probability, c.venomous, c.taught] for c in pred.top],
            "risky": [[c.species, c.scientific_name, c.common_name, c.probability, c.venomous, c.taught]
                      for c in pred.risky],
            "warnings": list(result.warnings),
        },
        # ASCII escapes keep a warning that quotes an undecodable file name storable (and exact).
        ensure_ascii=True,
    )


def result_from_record(path: str, record: str) -> FileResult:
    data = json.loads(record)
    top = tuple(Candidate(*c) for c in data["top"])
    risky = tuple(Candidate(*c) for c in data["risky"])
    venom_p = data["venom_probability"]
    prediction = Prediction(
        verdict=data["verdict"],
        risk=bool(data["risk"]),
        top=top,
        not_snake_probability=float(data["not_snake_probability"]),
        venom_probability=float(venom_p) if venom_p is not None else None,
        risky=risky,
        country=data["country"],
        country_source=data["country_source"],
    )
    return FileResult(path=path, prediction=prediction, warnings=list(data["warnings"]))


class BatchCache:
    """A small sqlite3 table; safe to share between the engine's thread and others (one lock)."""

    def __init__(self, db_path: Path | str):
        self.path = Path(db_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._inode: int | None = None
        self.rebuilds = 0
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise  # e.g. locked for longer than the timeout: never delete a cache someone is using
            self._rebuild(exc)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=10, check_same_thread=False)
        try:
            try:
                # One commit per batch of 16: WAL + NORMAL makes those cheap (no fsync per commit)
                # and lets the CLI and the app use the cache at the same time.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error:
                pass  # e.g. a network file system without shared memory: the default journal works too
            with conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS results ("
                    " path TEXT NOT NULL, model_key TEXT NOT NULL, size INTEGER NOT NULL,"
                    " mtime_ns INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (path, model_key))"
                )
            # A damaged page otherwise surfaces only when some later query reads it. quick_check reads
            # every page once: 45 ms for a 55 MB, 100k-row cache here.
            row = conn.execute("PRAGMA quick_check(1)").fetchone()
            if row is None or row[0] != "ok":
                raise _Damaged(str(row[0] if row else "no result").replace("\n", " "))
            self._inode = os.stat(self.path).st_ino
        except BaseException:
            conn.close()
            raise
        return conn

    def _rebuild(self, exc: sqlite3.Error) -> None:
        """Replace a damaged cache file with a fresh one (caller holds the lock, or is __init__)."""
        log.warning("The results cache %s is damaged (%s); starting a fresh one.", self.path, exc)
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None
        try:
            # If another process (the CLI beside the app) already replaced it, keep its fresh file.
            same_file = self._inode is None or os.stat(self.path).st_ino == self._inode
        except OSError:
            same_file = False
        if same_file:
            for leftover in (self.path, self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
                leftover.unlink(missing_ok=True)
        self._conn = self._connect()
        self.rebuilds += 1

    def _on_error(self, exc: sqlite3.Error) -> bool:
        """After a failed query (lock held): True when the cache was damaged and is now a fresh one."""
        if not _is_damage(exc) or self._conn is None:
            return False
        try:
            self._rebuild(exc)
            return True
        except (OSError, sqlite3.Error) as again:
            log.warning("The results cache cannot be rebuilt (%s); going on without it.", again)
            self._conn = None
            return False

    @classmethod
    def open_default(cls) -> "BatchCache | None":
        """The user's cache, or None (with the reason in ``last_error``) when it cannot be opened."""
        try:
            return cls(default_cache_path())
        except (OSError, sqlite3.Error) as exc:
            cls.last_error = f"The results cache cannot be used ({exc}); every file will be classified."
            return None

    last_error: str | None = None

    @staticmethod
    def _abs(path: str) -> str | bytes:
        absolute = os.path.abspath(path)
        # sqlite stores text as UTF-8, which a name with undecodable bytes is not: key such a
        # name by its raw bytes (a BLOB never equals a TEXT key, so no two names can collide).
        return absolute if is_exact_text(absolute) else os.fsencode(absolute)

    def lookup(self, path: str, st: os.stat_result, key: str) -> FileResult | None:
        """The stored result for ``path`` under model ``key`` if size and mtime still match."""
        with self._lock:
            if self._conn is None:
                return None
            try:
                row = self._conn.execute(
                    "SELECT size, mtime_ns, record FROM results WHERE path = ? AND model_key = ?",
                    (self._abs(path), key),
                ).fetchone()
            except sqlite3.Error as exc:
                self._on_error(exc)  # a fresh cache has nothing for this file either
                return None
        if row is None or row[0] != st.st_size or row[1] != st.st_mtime_ns:
            return None
        try:
            return result_from_record(path, row[2])
        except (ValueError, KeyError, TypeError):
            return None  # an unreadable row is simply recomputed

    def store_many(self, items: Iterable[tuple[FileResult, os.stat_result]], key: str) -> None:
        """Remember successful results with the file stat taken before they were decoded."""
        rows = [
            (self._abs(r.path), key, st.st_size, st.st_mtime_ns, result_to_record(r))
            for r, st in items
            if r.ok
        ]
        if not rows:
            return
        sql = "INSERT OR REPLACE INTO results (path, model_key, size, mtime_ns, record) VALUES (?, ?, ?, ?, ?)"
        with self._lock:
            for _attempt in range(2):  # once more into the fresh file if this one was damaged
                if self._conn is None:
                    return
                try:
                    with self._conn:
                        self._conn.executemany(sql, rows)
                    return
                except sqlite3.Error as exc:
                    # A full disk or locked cache costs a rerun's speed, never the run itself.
                    if not self._on_error(exc):
                        return

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
