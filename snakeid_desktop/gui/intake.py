"""What a drop, a paste or the open dialog brought in, sorted by what the window does with it.

Photos go to the session, folders to the batch window, and the rest is refused with a message
(non-images, missing files, remote URLs: the app never touches the network). Only the reading
of ``QMimeData`` needs Qt; :func:`plan_intake` is the plain decision of what to do.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QImage, QPixmap

from ..request_queue import BytesSource, PathSource, PixelSource, Source

MAX_FILES_PER_DROP = 50  # beyond this the batch window is the right tool
ENCODED_IMAGE_MIME_TYPES = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/heic",
    "image/heif",
    "image/avif",
    "image/gif",
    "image/bmp",
    "image/tiff",
)
REMOTE_SCHEMES = ("http", "https", "ftp", "ftps")


def image_extensions() -> frozenset[str]:
    from ..imageload import IMAGE_EXTENSIONS

    return frozenset(IMAGE_EXTENSIONS)


def _is_image_path(path: Path) -> bool:
    from ..imageload import is_image_path

    return is_image_path(path)


@dataclass
class SortedInput:
    """What a drop/paste contained, sorted by what we do with it."""

    sources: list[Source] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    not_images: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.sources or self.folders or self.not_images or self.missing or self.remote)


def _data_url_bytes(url: str) -> bytes | None:
    """The bytes of a ``data:image/...`` URL (browsers drag inline images this way)."""
    head, _, payload = url.partition(",")
    if not head.lower().startswith("data:image/"):
        return None
    try:
        if head.lower().endswith(";base64"):
            return base64.b64decode(payload, validate=False)
        return unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        return None


def sort_path(path: Path, into: SortedInput) -> None:
    """Sort one local path into ``into``: a folder, a missing file, a photo or something else."""
    if path.is_dir():
        into.folders.append(path)
    elif not path.exists():
        into.missing.append(str(path))
    elif _is_image_path(path):
        into.sources.append(PathSource(str(path)))
    else:
        into.not_images.append(path.name or str(path))


def sort_mime(mime: QMimeData, label: str = "dropped image") -> SortedInput:
    """Sort a drop or clipboard payload. Local files beat embedded image data beats text."""
    sorted_input = SortedInput()
    for url in mime.urls() if mime.hasUrls() else []:
        if url.isLocalFile():
            sort_path(Path(url.toLocalFile()), sorted_input)
        elif url.scheme().lower() == "data":
            data = _data_url_bytes(url.toString())
            if data:
                sorted_input.sources.append(BytesSource(data, label))
        elif url.scheme().lower() in REMOTE_SCHEMES:
            sorted_input.remote.append(url.toString())
        else:
            sorted_input.not_images.append(url.toString())
    if sorted_input.sources or sorted_input.folders:
        return sorted_input
    # A browser drag carries both the remote URL and the image itself: use the image.
    image_source = _embedded_image(mime, label)
    if image_source is not None:
        sorted_input.sources.append(image_source)
        sorted_input.remote.clear()
        return sorted_input
    if not sorted_input.empty:
        return sorted_input
    if mime.hasText():
        _sort_text(mime.text(), sorted_input)
    return sorted_input


def _embedded_image(mime: QMimeData, label: str) -> Source | None:
    formats = set(mime.formats())
    for mime_type in ENCODED_IMAGE_MIME_TYPES:
        if mime_type in formats:
            data = bytes(mime.data(mime_type).data())
            if data:
                return BytesSource(data, label)
    if mime.hasImage():
        image = mime.imageData()
        if isinstance(image, QPixmap):
            image = image.toImage()
        if isinstance(image, QImage) and not image.isNull():
            rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
            data = bytes(rgba.constBits())[: rgba.bytesPerLine() * rgba.height()]
            if rgba.bytesPerLine() != 4 * rgba.width():  # drop row padding
                stride, row = rgba.bytesPerLine(), 4 * rgba.width()
                data = b"".join(data[y * stride : y * stride + row] for y in range(rgba.height()))
            return PixelSource(rgba.width(), rgba.height(), data, label)
    return None


def _sort_text(text: str, into: SortedInput) -> None:
    """Copied file paths (one per line, plain or file:// URLs)."""
    for line in text.splitlines():
        line = line.strip().strip('"').strip("'")
        if not line:
            continue
        lowered = line.lower()
        if lowered.startswith("file:"):
            sort_path(Path(QUrl(line).toLocalFile()), into)
        elif lowered.startswith("data:image/"):
            data = _data_url_bytes(line)
            if data:
                into.sources.append(BytesSource(data, "pasted image"))
        elif lowered.split(":", 1)[0] in REMOTE_SCHEMES and "://" in lowered:
            into.remote.append(line)
        else:
            path = Path(line).expanduser()
            try:
                looks_like_path = path.is_absolute() and (path.exists() or len(line) < 1024)
            except OSError:
                looks_like_path = False
            if looks_like_path:
                sort_path(path, into)


def sort_paths(paths: Iterable[str | Path]) -> SortedInput:
    """Sort paths given directly (the open dialog, the command line)."""
    sorted_input = SortedInput()
    for path in paths:
        sort_path(Path(path), sorted_input)
    return sorted_input


def may_hold_input(mime: QMimeData) -> bool:
    """Whether a drag is worth accepting (what it holds is only known on drop)."""
    return mime.hasUrls() or mime.hasImage() or mime.hasText() or any(f.startswith("image/") for f in mime.formats())


@dataclass
class IntakePlan:
    """What to do with sorted input: photos to add, a folder for the batch window, what to tell the user."""

    sources: list[Source]
    folder: Path | None
    notes: list[str]

    @property
    def took_something(self) -> bool:
        return bool(self.sources or self.folder)


def plan_intake(sorted_input: SortedInput, verb: str) -> IntakePlan:
    """``verb`` says how it arrived ("dropped", "pasted", "given"), for the messages."""
    notes = []
    if sorted_input.empty:
        notes.append(f"Nothing usable was {verb}: drop or paste a photo (JPEG, PNG, HEIC…), image files, or a folder.")
    if sorted_input.remote:
        notes.append(
            "SnakeID never goes online, so it cannot fetch web addresses "
            f"({short_list(sorted_input.remote)}). Download the photo first (right-click → Save image), "
            "then drop the saved file, or copy the image itself and paste it."
        )
    if sorted_input.not_images:
        notes.append(
            f"Not a photo SnakeID can read: {short_list(sorted_input.not_images)}. "
            f"Supported: {', '.join(sorted(e.lstrip('.') for e in image_extensions()))}."
        )
    if sorted_input.missing:
        notes.append(f"No longer there: {short_list(sorted_input.missing)}.")
    sources = sorted_input.sources
    if len(sources) > MAX_FILES_PER_DROP:
        notes.append(
            f"{len(sources)} photos at once is a job for the batch window (Ctrl+B); "
            f"the first {MAX_FILES_PER_DROP} were added here."
        )
        sources = sources[:MAX_FILES_PER_DROP]
    folder = sorted_input.folders[0] if sorted_input.folders else None
    if len(sorted_input.folders) > 1:
        notes.append("One folder at a time: the batch window opened with the first one.")
    return IntakePlan(list(sources), folder, notes)


def short_list(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
