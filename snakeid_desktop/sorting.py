"""Copy (or, when explicitly asked, move) classified photos into per-verdict folders, undoably.

Layout under the chosen destination: ``<species-slug>/``, ``unsure/``, ``not_snake/``, ``errors/``.
Nothing is ever overwritten: a name already taken gets `` (1)``, `` (2)``... and the target is
created exclusively (``open(..., "xb")`` / ``os.link``), so even a file appearing meanwhile is safe.
Copies keep the original's modification time; the originals are only read.

Every operation is appended to a manifest (JSON lines, flushed per line, so a crash midway
is still undoable) in ``$SNAKEID_DATA_DIR/sort-manifests`` when that variable is set, else in
the platform's user data folder. :func:`undo_sort` reverses one: it deletes copies that are
still exactly as copied (same size and mtime) and moves moved files back where nothing
has taken their place, then removes the folders the sort created if they are empty.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .results import FileResult

UNSURE, NOT_SNAKE, ERRORS = "unsure", "not_snake", "errors"
MANIFEST_SUFFIX = ".jsonl"
UNDONE_SUFFIX = ".undone.jsonl"
_MAX_RENAMES = 100_000


def default_manifest_dir() -> Path:
    return paths.user_data_dir() / "sort-manifests"


def category_for(result: FileResult) -> str:
    """Folder name for one result: the species slug, or unsure / not_snake / errors."""
    pred = result.prediction
    if not result.ok or pred is None:
        return ERRORS
    if pred.verdict == "species" and pred.best is not None:
        return pred.best.species
    return NOT_SNAKE if pred.verdict == "not_snake" else UNSURE


def _candidate_names(name: str) -> Iterable[str]:
    yield name
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix = name, ""
    ext = f".{suffix}" if suffix else ""
    for n in range(1, _MAX_RENAMES):
        yield f"{stem} ({n}){ext}"


def _copy_exclusive(src: Path, folder: Path, name: str) -> Path:
    """Copy ``src`` into ``folder`` under ``name`` or the first free variant; never overwrites."""
    for candidate_name in _candidate_names(name):
        target = folder / candidate_name
        try:
            out = open(target, "xb")
        except FileExistsError:
            continue
        try:
            with out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out, 1 << 20)
            shutil.copystat(src, target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target
    raise FileExistsError(f"No free name for {name} in {folder}.")


def _move_exclusive(src: Path, folder: Path, name: str) -> Path:
    """Move without ever replacing an existing file: hard link then unlink, or copy then unlink."""
    for candidate_name in _candidate_names(name):
        target = folder / candidate_name
        try:
            os.link(src, target, follow_symlinks=False)
        except FileExistsError:
            continue
        except (OSError, NotImplementedError):
            break  # another file system, no hard links there, or a platform without link-without-follow: copy instead
        _unlink_source_or_undo(src, target)
        return target
    target = _copy_exclusive(src, folder, name)
    if target.stat().st_size != src.stat().st_size:
        target.unlink(missing_ok=True)
        raise OSError(f"The copy of {src} came out incomplete; the original was left in place.")
    _unlink_source_or_undo(src, target)
    return target


def _unlink_source_or_undo(src: Path, target: Path) -> None:
    """Finish a move; if the original cannot be removed (read-only folder), drop the new copy instead."""
    try:
        os.unlink(src)
    except OSError:
        target.unlink(missing_ok=True)
        raise


@dataclass
class SortSummary:
    manifest: Path | None
    mode: str
    done: int = 0
    problems: list[str] = field(default_factory=list)
    cancelled: bool = False
    by_category: dict[str, int] = field(default_factory=dict)


class _Manifest:
    def __init__(self, folder: Path, header: dict):
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = folder / f"sort-{stamp}-{uuid.uuid4().hex[:8]}{MANIFEST_SUFFIX}"
        self._fh = open(self.path, "x", encoding="utf-8")
        self.append({"kind": "header", "version": 1, **header})

    def append(self, record: dict) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        try:
            os.fsync(self._fh.fileno())
        finally:
            self._fh.close()


def sort_results(
    results: Iterable[FileResult],
    destination: Path | str,
    *,
    move: bool = False,
    manifest_dir: Path | str | None = None,
    cancel_event: threading.Event | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SortSummary:
    """Copy (default) or move each result's file into ``destination/<category>/``.

    A file that cannot be copied is listed in ``problems`` and the rest go on. Moving is
    only done when ``move=True``: the caller must have asked the user to confirm it.
    """
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    mode = "move" if move else "copy"
    manifest = _Manifest(
        Path(manifest_dir) if manifest_dir else default_manifest_dir(),
        {"mode": mode, "destination": str(destination.resolve()), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    )
    summary = SortSummary(manifest=manifest.path, mode=mode)
    made_folders: set[str] = set()
    try:
        for result in results:
            if cancel_event is not None and cancel_event.is_set():
                summary.cancelled = True
                break
            category = category_for(result)
            folder = destination / category
            src = Path(result.path)
            try:
                if category not in made_folders:
                    try:
                        folder.mkdir()
                        manifest.append({"kind": "folder", "path": str(folder)})
                    except FileExistsError:
                        pass
                    made_folders.add(category)
                source = str(src.resolve())
                target = (_move_exclusive if move else _copy_exclusive)(src, folder, src.name)
                # The target's own stat: undo deletes a copy only if it is still exactly this.
                st = target.stat()
                manifest.append(
                    {"kind": "file", "mode": mode, "source": source, "target": str(target),
                     "size": st.st_size, "mtime_ns": st.st_mtime_ns, "category": category}
                )
            except OSError as exc:
                summary.problems.append(f"{src}: could not {mode} it ({exc.strerror or exc}).")
                continue
            summary.done += 1
            summary.by_category[category] = summary.by_category.get(category, 0) + 1
            if on_progress is not None:
                on_progress(summary.done)
    finally:
        manifest.close()
    return summary


def last_manifest(manifest_dir: Path | str | None = None) -> Path | None:
    """The newest sort that has not been undone, or None."""
    folder = Path(manifest_dir) if manifest_dir else default_manifest_dir()
    try:
        candidates = [
            p for p in folder.iterdir()
            if p.name.endswith(MANIFEST_SUFFIX) and not p.name.endswith(UNDONE_SUFFIX)
        ]
    except OSError:
        return None
    return max(candidates, key=lambda p: (p.stat().st_mtime_ns, p.name), default=None)


@dataclass
class UndoSummary:
    manifest: Path
    undone: int = 0
    problems: list[str] = field(default_factory=list)


def undo_sort(manifest_path: Path | str) -> UndoSummary:
    """Reverse one sort. Never deletes a copy that was changed since, never overwrites anything."""
    manifest_path = Path(manifest_path)
    summary = UndoSummary(manifest=manifest_path)
    records = []
    with open(manifest_path, encoding="utf-8") as fh:
        for line in fh:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a crash: the operation it described did not complete
    for rec in reversed(records):
        if rec.get("kind") != "file":
            continue
        target, source = Path(rec["target"]), Path(rec["source"])
        try:
            st = target.stat()
        except FileNotFoundError:
            summary.problems.append(f"{target} is no longer there; nothing to undo for it.")
            continue
        except OSError as exc:
            summary.problems.append(f"{target}: cannot be checked ({exc.strerror or exc}).")
            continue
        try:
            if rec["mode"] == "copy":
                if st.st_size != rec["size"] or st.st_mtime_ns != rec["mtime_ns"]:
                    summary.problems.append(f"Kept {target}: it was changed after the sort.")
                    continue
                target.unlink()
            else:
                if os.path.lexists(source):
                    summary.problems.append(f"Left {target} where it is: {source} exists again.")
                    continue
                source.parent.mkdir(parents=True, exist_ok=True)
                _move_exclusive(target, source.parent, source.name)
        except OSError as exc:
            summary.problems.append(f"{target}: could not undo ({exc.strerror or exc}).")
            continue
        summary.undone += 1
    for rec in reversed(records):
        if rec.get("kind") == "folder":
            try:
                os.rmdir(rec["path"])  # only when empty: anything the user added stays
            except OSError:
                pass
    done_path = manifest_path.with_name(manifest_path.name[: -len(MANIFEST_SUFFIX)] + UNDONE_SUFFIX)
    os.replace(manifest_path, done_path)
    summary.manifest = done_path
    return summary
