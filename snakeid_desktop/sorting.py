"""Copy (or, when explicitly asked, move) classified photos into per-verdict folders, undoably.

Layout under the chosen destination: one folder per species, named for people
(``Naja philippinensis (Philippine cobra)/``), ``A snake SnakeID does not know/`` (the ``other_snake``
class), ``unsure/``, ``not a snake/``, ``outside coverage/`` and ``errors/`` (photos that could not be
classified). Sorts made before these names used slugs (``naja-philippinensis/``, ``not_snake/``); their
manifests name the real paths, so undoing them works unchanged.
Nothing is ever overwritten: a name already taken gets `` (1)``, `` (2)``... and the target is
created exclusively (``open(..., "xb")`` / ``os.link``), so even a file appearing meanwhile is safe.
Copies keep the original's modification time; the originals are only read.

Every operation is appended to a manifest (JSON lines, flushed per line, so a crash midway
is still undoable) in ``sort-manifests`` under ``paths.user_data_dir()`` (``$SNAKEID_DATA_DIR``, else
``$SNAKEID_HOME/data``, else the platform's user data folder). :func:`undo_sort` reverses one: it deletes copies that are
still exactly as copied (same size, mtime and SHA-256 of the content) and moves moved files
back where nothing has taken their place, then removes the folders the sort created if they
are empty. Undoing twice reports "already undone" and changes nothing.

Folder names are made safe on every OS by :func:`safe_folder_name` (no separators, NUL or other
controls, none of Windows' ``<>:"|?*``, no trailing dot or space, no reserved device name such as
``CON`` or ``LPT1``, at most :data:`MAX_FOLDER_NAME_BYTES`), and every target must resolve inside the
destination. A symbolic link is
copied as the file it points to; moved, it stays a link that reaches the same file (a relative
link is rewritten for its new folder) and undo puts back the original link text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .checksums import sha256_file
from .errors import SnakeIDError
from .results import FileResult
from .safety import OTHER_SNAKE

# Categories (the manifest's ``category``, ``SortSummary.by_category``): a species slug or one of these.
UNSURE, NOT_SNAKE, OUTSIDE_COVERAGE, ERRORS = "unsure", "not_snake", "outside_coverage", "errors"
# The folders for categories that are not a species. Lower case, the app's own words: they read as
# "not a species" beside the capitalised species folders. ``unsure`` and ``errors`` keep the names
# earlier sorts used, so re-sorting into the same destination fills the same folders.
VERDICT_FOLDERS = {
    UNSURE: "unsure",
    NOT_SNAKE: "not a snake",
    OUTSIDE_COVERAGE: "outside coverage",
    ERRORS: "errors",
}
OTHER_SNAKE_FOLDER = "A snake SnakeID does not know"  # the catalogue's name for the other_snake class
MANIFEST_SUFFIX = ".jsonl"
UNDONE_SUFFIX = ".undone.jsonl"
_MAX_RENAMES = 100_000
# ext4, APFS and NTFS allow 255 per name; far less leaves room for the destination and the file
# name under Windows' 260-character path limit.
MAX_FOLDER_NAME_BYTES = 100


def default_manifest_dir() -> Path:
    return paths.user_data_dir() / "sort-manifests"


def category_for(result: FileResult) -> str:
    """Category of one result: the species slug, or unsure / not_snake / outside_coverage / errors."""
    pred = result.prediction
    if not result.ok or pred is None:
        return ERRORS
    if pred.verdict == "species" and pred.best is not None:
        return pred.best.species
    if pred.verdict in (NOT_SNAKE, OUTSIDE_COVERAGE):
        return pred.verdict
    return UNSURE


def folder_name_for(result: FileResult) -> str:
    """The folder one result goes into, readable and safe: ``Naja philippinensis (Philippine cobra)``,
    ``unsure``, ``not a snake``..."""
    category = category_for(result)
    if category in VERDICT_FOLDERS:
        return VERDICT_FOLDERS[category]
    best = result.prediction.best
    if best.species == OTHER_SNAKE:
        return OTHER_SNAKE_FOLDER
    scientific, common = best.scientific_name.strip(), best.common_name.strip()
    if not scientific:
        readable = common or best.species
    elif common and common.casefold() != scientific.casefold():
        readable = f"{scientific} ({common})"
    else:
        readable = scientific
    return safe_folder_name(readable)


# Separators, NUL and other controls, and what Windows forbids: a class name is data, not a path.
_UNSAFE_IN_FOLDER_NAME = re.compile(r'[/\\\x00-\x1f\x7f<>:"|?*]')
# Windows opens these devices whatever the extension ("nul.txt" too); superscript digits count as well.
_RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"{dev}{n}" for dev in ("COM", "LPT") for n in (*"0123456789", "\u00b9", "\u00b2", "\u00b3")]
)


def safe_folder_name(category: str) -> str:
    """``category`` as one plain folder name, valid on Windows, macOS and Linux alike.

    Never a path, never ``.``/``..`` or empty; forbidden characters become ``_``; no trailing dot or
    space (Windows drops them); a reserved device name gets a leading ``_``; longer than
    :data:`MAX_FOLDER_NAME_BYTES` in UTF-8 it is cut and a short hash of the full name keeps it distinct.
    """
    name = unicodedata.normalize("NFC", category)  # macOS stores names decomposed: one spelling everywhere
    name = _trim_ends(_UNSAFE_IN_FOLDER_NAME.sub("_", name))
    if not name or name.split(".")[0].rstrip(" ").upper() in _RESERVED_NAMES:
        name = "_" + name
    if len(name.encode("utf-8")) > MAX_FOLDER_NAME_BYTES:
        tag = "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        cut = name.encode("utf-8")[: MAX_FOLDER_NAME_BYTES - len(tag)].decode("utf-8", "ignore")
        name = _trim_ends(cut) + tag
    return name


def _trim_ends(name: str) -> str:
    """Without leading or trailing white space (any Unicode space) or trailing dots, however they alternate."""
    while True:
        trimmed = name.strip().rstrip(".")
        if trimmed == name:
            return name
        name = trimmed


def _inside(folder: str, path: str) -> bool:
    """Whether ``path`` resolves (links followed) strictly inside ``folder`` (already resolved)."""
    real = os.path.realpath(path)
    return real != folder and os.path.commonpath([folder, real]) == folder


def _plain_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and os.sep not in name and "\0" not in name


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
    return _copy_exclusive_hashed(src, folder, name)[0]


def _copy_exclusive_hashed(src: Path, folder: Path, name: str) -> tuple[Path, str]:
    """:func:`_copy_exclusive`, also returning the SHA-256 of the bytes written (undo compares it)."""
    for candidate_name in _candidate_names(name):
        target = folder / candidate_name
        try:
            out = open(target, "xb")
        except FileExistsError:
            continue
        digest = hashlib.sha256()
        try:
            with out, open(src, "rb") as inp:
                for block in iter(lambda: inp.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
            shutil.copystat(src, target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target, digest.hexdigest()
    raise FileExistsError(f"No free name for {name} in {folder}.")


def _link_text_from(link: Path, folder: Path) -> str:
    """What a copy of symbolic link ``link`` placed in ``folder`` must hold to reach the same file."""
    text = os.readlink(link)
    if os.path.isabs(text):
        return text
    pointed = os.path.normpath(os.path.join(os.path.realpath(link.parent), text))
    return os.path.relpath(pointed, os.path.realpath(folder))


def _move_symlink_exclusive(src: Path, folder: Path, name: str, text: str) -> Path:
    """Move a symbolic link as a link holding ``text``; never replaces anything."""
    for candidate_name in _candidate_names(name):
        target = folder / candidate_name
        try:
            os.symlink(text, target)
        except FileExistsError:
            continue
        _unlink_source_or_undo(src, target)
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


class DestinationError(SnakeIDError):
    """The destination folder cannot be used (cannot be created, or is a file): nothing was sorted."""


@dataclass
class SortSummary:
    manifest: Path | None
    mode: str
    done: int = 0
    problems: list[str] = field(default_factory=list)
    cancelled: bool = False
    by_category: dict[str, int] = field(default_factory=dict)  # category (slug, "errors"...) -> photos
    # Folder name -> photos put there: every folder this sort filled, errors/ included. A folder the
    # sort made and then could not fill is removed again, so no empty, uncounted folder is left.
    folders: dict[str, int] = field(default_factory=dict)
    created_destination: bool = False  # the destination did not exist: the sort made it (undo removes it)


def _make_destination(destination: Path) -> list[Path]:
    """Create ``destination`` and any missing parents; returns those it made, outermost first."""
    missing = []
    probe = destination
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DestinationError(f"{destination} is a file, not a folder; nothing was sorted.") from None
    except OSError as exc:
        raise DestinationError(
            f"Could not create the folder {destination} ({exc.strerror or exc}); nothing was sorted.") from None
    if not destination.is_dir():
        raise DestinationError(f"{destination} is not a folder; nothing was sorted.")
    return list(reversed(missing))


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
    """Copy (default) or move each result's file into ``destination/<folder_name_for(result)>/``.

    A missing destination is created with its parents (and recorded, so undo removes it when it is
    empty again); one that cannot be created raises :class:`DestinationError` before anything else.
    A file that cannot be copied is listed in ``problems`` and the rest go on. Moving is
    only done when ``move=True``: the caller must have asked the user to confirm it.
    """
    destination = Path(destination)
    created = _make_destination(destination)
    mode = "move" if move else "copy"
    manifest = _Manifest(
        Path(manifest_dir) if manifest_dir else default_manifest_dir(),
        {"mode": mode, "destination": str(destination.resolve()), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    )
    summary = SortSummary(manifest=manifest.path, mode=mode, created_destination=bool(created))
    for folder in created:  # outermost first: undo removes folders in reverse, innermost first
        manifest.append({"kind": "folder", "path": str(folder)})
    made_folders: dict[str, Path] = {}  # folders this sort created, by name
    seen_folders: set[str] = set()
    # Every target must resolve inside this, links followed, whatever a class name says.
    dest_real = os.path.realpath(destination)
    try:
        for result in results:
            if cancel_event is not None and cancel_event.is_set():
                summary.cancelled = True
                break
            category = category_for(result)
            folder_name = folder_name_for(result)
            folder = destination / folder_name
            src = Path(result.path)
            try:
                if not _plain_name(src.name):
                    summary.problems.append(f"{src}: not {mode}d: it has no usable file name.")
                    continue
                if folder_name not in seen_folders:
                    try:
                        folder.mkdir()
                        manifest.append({"kind": "folder", "path": str(folder)})
                        made_folders[folder_name] = folder
                    except FileExistsError:
                        pass
                    seen_folders.add(folder_name)
                if not _inside(dest_real, str(folder)):
                    summary.problems.append(f"{src}: not {mode}d: {folder} leads outside {destination}.")
                    continue
                # The link itself, not what it points to: that is what is moved, and restored by undo.
                source = os.path.join(os.path.realpath(src.parent), src.name)
                record = {"kind": "file", "mode": mode, "source": source}
                if move and src.is_symlink():
                    # Moved as a link that still reaches the same file (a relative one is rewritten).
                    original_text, new_text = os.readlink(src), _link_text_from(src, folder)
                    target = _move_symlink_exclusive(src, folder, src.name, new_text)
                    record.update(symlink=original_text, link_text=new_text)
                elif move:
                    target = _move_exclusive(src, folder, src.name)
                else:
                    target, record["sha256"] = _copy_exclusive_hashed(src, folder, src.name)
                # The target's own stat: undo deletes a copy only if it is still exactly this.
                st = os.lstat(target)
                record.update(target=str(target), size=st.st_size, mtime_ns=st.st_mtime_ns, category=category)
                manifest.append(record)
            except OSError as exc:
                summary.problems.append(f"{src}: could not {mode} it ({exc.strerror or exc}).")
                continue
            summary.done += 1
            summary.by_category[category] = summary.by_category.get(category, 0) + 1
            summary.folders[folder_name] = summary.folders.get(folder_name, 0) + 1
            if on_progress is not None:
                on_progress(summary.done)
    finally:
        for name, folder in made_folders.items():
            if name not in summary.folders:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # made for a photo that then failed; only if still empty
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
    kept: list[Path] = field(default_factory=list)  # copies left because they were changed after the sort
    already_undone: bool = False


def _undone_path(manifest_path: Path) -> Path:
    return manifest_path.with_name(manifest_path.name[: -len(MANIFEST_SUFFIX)] + UNDONE_SUFFIX)


def _copy_changed(target: Path, rec: dict, st: os.stat_result) -> bool:
    if not stat.S_ISREG(st.st_mode) or st.st_size != rec["size"] or st.st_mtime_ns != rec["mtime_ns"]:
        return True
    # An edit can keep size and mtime (editors restore them, a clock moves): the content decides.
    # Manifests written before the hash was recorded fall back to size and mtime.
    return "sha256" in rec and sha256_file(target) != rec["sha256"]


def undo_sort(manifest_path: Path | str) -> UndoSummary:
    """Reverse one sort. Never deletes a copy that was changed since, never overwrites anything.

    Undoing a sort a second time changes nothing and says so (``already_undone``).
    """
    manifest_path = Path(manifest_path)
    summary = UndoSummary(manifest=manifest_path)
    if manifest_path.name.endswith(UNDONE_SUFFIX) or (
            not manifest_path.exists() and _undone_path(manifest_path).exists()):
        summary.already_undone = True
        summary.problems.append("This sort was already undone; there is nothing left to undo.")
        return summary
    records = []
    try:
        with open(manifest_path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line torn by a crash: the operation it described did not complete
    except OSError as exc:
        summary.problems.append(f"The record of this sort ({manifest_path}) cannot be read "
                                f"({exc.strerror or exc}); nothing was undone.")
        return summary
    for rec in reversed(records):
        if rec.get("kind") != "file":
            continue
        target, source = Path(rec["target"]), Path(rec["source"])
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            summary.problems.append(f"{target} is no longer there; nothing to undo for it.")
            continue
        except OSError as exc:
            summary.problems.append(f"{target}: cannot be checked ({exc.strerror or exc}).")
            continue
        try:
            if rec["mode"] == "copy":
                if _copy_changed(target, rec, st):
                    summary.kept.append(target)
                    summary.problems.append(f"Kept {target}: it was changed after the sort.")
                    continue
                target.unlink()
            elif "symlink" in rec:
                if not stat.S_ISLNK(st.st_mode) or os.readlink(target) != rec["link_text"]:
                    summary.problems.append(f"Left {target} where it is: it was changed after the sort.")
                    continue
                if os.path.lexists(source):
                    summary.problems.append(f"Left {target} where it is: {source} exists again.")
                    continue
                source.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(rec["symlink"], source)  # exactly the link the user had
                _unlink_source_or_undo(target, source)
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
    done_path = _undone_path(manifest_path)
    os.replace(manifest_path, done_path)
    summary.manifest = done_path
    return summary
