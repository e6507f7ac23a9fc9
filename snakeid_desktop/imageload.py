"""The one way SnakeID reads a picture: from a path or from bytes, to an RGB ``PIL.Image``.

Used by the CLI, the batch engine, the GUI and training's evaluation, so every photo is
decoded the same way everywhere. What it guarantees:

* The source is opened read-only, read once into memory and closed before decoding; it is
  never written to. Non-regular files (FIFOs, devices) are refused without being read.
* Only the decoders for the formats we accept are tried (``Image.open(formats=...)``), so a
  hostile file cannot reach Pillow's rarer plugins.
* Every error is an :class:`ImageLoadError` whose ``str`` is one sentence naming the file and
  whose ``kind`` is an :class:`~snakeid_desktop.errors.ErrorKind` (those raised here: ``KINDS``).
* The result is ``mode == "RGB"``, fully loaded, upright (EXIF orientation applied) and
  detached from the source. ``original_size`` is the upright size before any reduction.
* With ``min_side``, big pictures are reduced early but never below ``min_side`` on the
  shorter side: JPEGs are decoded at 1/2, 1/4 or 1/8 scale by libjpeg (``Image.draft``), any
  format is then box-reduced by an integer factor so the shorter side ends below
  ``2 * min_side``. This is what makes a 24 MP phone photo cheap to classify.

Truncated files, without touching ``ImageFile.LOAD_TRUNCATED_IMAGES``: that flag is a
process-wide global read in the middle of ``ImageFile.load()``, and batch decoding runs in
several threads, so flipping it per call would race. Instead:

* JPEG (nearly every truncated photo is a half-copied JPEG): a structural end check (an EOI
  marker after the last start-of-scan) spots the missing end, and the bytes are decoded with
  a synthetic EOI appended. libjpeg then finishes the picture itself (grey where data is
  missing) as if the flag were set, but only for this one image. The result carries a warning.
* Other formats are decoded with the global left alone; Pillow's "truncated" failure (and
  libheif's/libwebp's equivalents, and a WebP RIFF size larger than the file) becomes an
  ``ImageLoadError(kind="truncated")``. A PNG lacking its IEND chunk that still decodes
  (all rows present, or some other code in the process did set the global) gets the warning.

Decompression bombs and memory: anything over ``MAX_PIXELS`` (160 MP, checked on the header
before any pixel is decoded) is refused, as is anything Pillow itself flags
(``DecompressionBombError``, and ``DecompressionBombWarning`` where warning filters turn it into
an exception), and anything more than ``MAX_ASPECT_RATIO`` (100:1) longer than wide: a
475-byte 1x100000 PNG is a line, not a photo (kind ``bad_dimensions``); preprocessing
centre-crops milder shapes to 3:1 before resizing, so the model's input is bounded too.
160 MP covers 100-150 MP medium-format cameras and 108 MP phone modes and stays under Pillow's
own hard stop (~179 MP). Conversions (16-bit, float, alpha, palette, CMYK) run by strips after
reducing where that changes nothing, and the decoded RGB picture is not copied. Measured peak
per 159 MP picture (``benchmarks/bench_memory.py``, above the process's baseline), worst cases
float TIFF / LA PNG / RGBA PNG: ~0.66 GB with ``min_side=256`` (was 1.8-2.0 GB) and ~1.27 GB
decoded at full size (was 1.8-2.0 GB). On top of that, every decode reserves its estimated peak
(file bytes + decoded picture + result + strip temporaries, from the header) from one
process-wide :class:`DecodeBudget` of ``DECODE_BUDGET_BYTES`` (1.5 GiB, or a quarter of
physical memory if smaller) and waits until it fits, so the batch engine's decoder threads and
the GUI together stay within it: four 159 MP worst cases decoded at once peaked at 1.34 GB above
baseline (most reserved at once 1.31 GB) where they used to reach 4.7 GB and fail. A picture
whose estimate exceeds the whole budget runs alone. (The bytes of files waiting for their turn
are outside the budget: at most one file, <= 512 MB, per waiting thread.)

Colour: an embedded ICC profile (RGB family, or CMYK with a CMYK profile) is converted to sRGB
with littlecms (``PIL.ImageCms``), after reduction, so the model and the display see the same
colours whatever space the photo was saved in (Display P3, Adobe RGB, ProPhoto). A damaged or
mismatched profile keeps the stored pixels and adds a warning; a grey profile is ignored. The
result carries no profile: its pixels are sRGB. Cost: ~2 ms per 12 MP JPEG at ``min_side=256``,
~135 ms at full size (``benchmarks/bench_decode.py --icc``).

Damage that still decodes is reported in ``LoadedImage.warnings``: a JPEG whose bottom (or
whole picture) is libjpeg's flat mid-grey, as zeroed or missing scan data decodes (none of the
535 validation photos trips it), and Pillow's own warnings ("Corrupt EXIF data", ...), which are
routed per thread from a ``warnings.showwarning`` hook installed at import (see the comment
there) instead of reaching stderr. An MPO's gain map or preview (Ultra HDR photos) is not
counted as an extra frame; stereo and multi-angle views are.

Transparency is composited on mid-grey (128, 128, 128): with the model's normalisation it
sits at the centre of the input range, i.e. the least informative colour, where white or
black would look like sky, snow or shadow and bias the classifier; grey also reads as
"no content" when the GUI shows the picture.
"""

from __future__ import annotations

import io
import math
import os
import stat
import threading
import warnings as _warnings
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from .errors import ErrorKind, ImageLoadError

__all__ = [
    "IMAGE_EXTENSIONS",
    "KINDS",
    "LoadedImage",
    "MAX_PIXELS",
    "DECODE_BUDGET_BYTES",
    "DecodeBudget",
    "is_image_path",
    "load_image",
    "load_image_bytes",
]

MAX_PIXELS = 160_000_000
# Larger files are refused before being read: no photo we accept needs more, and the bytes
# are held in memory while decoding.
MAX_FILE_BYTES = 512 * 1024 * 1024
SMALL_SIDE = 64  # shorter side below this: the model sees mostly upsampling blur
SMALL_PHOTO_SIDE = 150  # below this the model (192 px input) upsamples: a "less reliable" warning
ELONGATED_RATIO = 3.0  # classification looks at a centre square; beyond this most is cropped
# Beyond this a "picture" is a line (a 1x100000 PNG is 475 bytes): nothing to identify, and
# no camera or panorama tool makes one (a 360-degree panorama is about 6:1).
MAX_ASPECT_RATIO = 100.0
BACKGROUND = (128, 128, 128)
# Conversions run over horizontal strips of about this many pixels, so a mode change costs one
# strip of temporaries instead of one or two full-size copies.
STRIP_PIXELS = 4_000_000

# The kinds this module raises: the rest of ErrorKind comes from memory, the model and the GUI.
KINDS = frozenset(
    {
        ErrorKind.NOT_FOUND,
        ErrorKind.IS_DIRECTORY,
        ErrorKind.PERMISSION_DENIED,
        ErrorKind.EMPTY_FILE,
        ErrorKind.NOT_AN_IMAGE,
        ErrorKind.UNSUPPORTED_FORMAT,
        ErrorKind.TRUNCATED,
        ErrorKind.CORRUPT,
        ErrorKind.TOO_LARGE,
        ErrorKind.BAD_DIMENSIONS,
        ErrorKind.UNREADABLE,
    }
)

# PNG metadata: Pillow refuses a text/XMP/ICC chunk that inflates past 1 MiB as if the file were
# broken, yet Photoshop/Lightroom XMP with history or a printer ICC profile is larger. These are
# module globals read during decoding, so they are raised once here (never flipped per call,
# which would race between decoder threads) and never lowered below what someone else set.
# MAX_TEXT_MEMORY keeps the total per file bounded (64 MiB, next to a 512 MiB file limit).
PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, 32 * 2**20)
PngImagePlugin.MAX_TEXT_MEMORY = max(PngImagePlugin.MAX_TEXT_MEMORY, 64 * 2**20)


def _avif_supported() -> bool:
    try:
        from PIL import features

        return bool(features.check("avif"))
    except Exception:  # an old Pillow without the feature name
        return False


IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".hif"}
    | ({".avif"} if _avif_supported() else set())
)

# Camera raw files: many are TIFF inside and would "decode" as their tiny preview.
_RAW_EXTENSIONS = frozenset(
    {".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".dng", ".orf", ".rw2", ".raf",
     ".pef", ".srw", ".x3f", ".3fr", ".erf", ".kdc", ".mrw", ".iiq", ".rwl"}
)

# Pillow plugin names we let Image.open try, in the order tried. MPO comes from the JPEG opener.
_ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
_JPEG_FORMATS = ("JPEG", "MPO")

# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose).
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112


@dataclass
class LoadedImage:
    image: Image.Image  # mode RGB, fully loaded, upright, not tied to any file
    original_size: tuple[int, int]  # (w, h) upright, before any reduction
    format: str | None  # Pillow's format name: "JPEG", "PNG", "HEIF", ...
    warnings: list[str] = field(default_factory=list)
    # The country of the photo's EXIF GPS position (ISO code), or None. Only the code is kept:
    # the coordinates never leave the loader (region.country_of_photo).
    gps_country: str | None = None

    @property
    def scale(self) -> float:
        """How much the picture was reduced: original width / returned width (1.0 = full size)."""
        return self.original_size[0] / self.image.size[0]


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether a file name looks like a picture we read (by suffix, any case).

    macOS "._name.jpg" AppleDouble companions (metadata, found on USB drives and shares)
    are not pictures despite the suffix.
    """
    p = Path(path)
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("._")


def load_image(path: str | os.PathLike, *, min_side: int | None = None) -> LoadedImage:
    """Read and decode the picture at ``path``; see the module docstring for what is guaranteed.

    ``min_side``: the caller needs the shorter side to be at least this many pixels (e.g. the
    preprocessing resize size); the picture may then be decoded smaller than its full size.
    """
    _check_min_side(min_side)
    label = os.fsdecode(path)
    data = _read_file(path, label)
    suffix = Path(label).suffix.lower()
    if suffix in _RAW_EXTENSIONS:
        raise ImageLoadError(
            f'"{label}" is a camera raw file, which SnakeID cannot read; export it as JPEG first.',
            ErrorKind.UNSUPPORTED_FORMAT,
        )
    return _decode(data, label, min_side)


def load_image_bytes(data: bytes, *, name: str = "pasted image", min_side: int | None = None) -> LoadedImage:
    """Decode a picture held in memory (clipboard, drag and drop); ``name`` labels it in messages."""
    _check_min_side(min_side)
    return _decode(bytes(data), name, min_side)


def _check_min_side(min_side: int | None) -> None:
    if min_side is not None and (not isinstance(min_side, int) or min_side < 1):
        raise ValueError(f"min_side must be a positive int or None, not {min_side!r}")


# --- reading -------------------------------------------------------------------------------


def _nonblocking_opener(path, flags):
    # O_NONBLOCK so that opening a FIFO returns at once (we then refuse it) instead of hanging
    # a batch run; it changes nothing for regular files.
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _read_file(path, label: str) -> bytes:
    try:
        with open(path, "rb", opener=_nonblocking_opener) as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ImageLoadError(f'"{label}" is not a regular file, so it cannot be a photo.', ErrorKind.UNREADABLE)
            if info.st_size > MAX_FILE_BYTES:
                raise ImageLoadError(
                    f'"{label}" is too large to open ({info.st_size / 2**20:.0f} MB; '
                    f"the limit is {MAX_FILE_BYTES // 2**20} MB).",
                    ErrorKind.TOO_LARGE,
                )
            # +1 so a file that grew after fstat is still caught by the size limit.
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ImageLoadError(
            f'"{label}" was not found (it may have been moved, renamed or deleted).', ErrorKind.NOT_FOUND
        ) from None
    except NotADirectoryError:
        raise ImageLoadError(f'"{label}" was not found (part of its path is not a folder).', ErrorKind.NOT_FOUND) from None
    except IsADirectoryError:
        raise ImageLoadError(f'"{label}" is a folder, not an image file.', ErrorKind.IS_DIRECTORY) from None
    except PermissionError:
        # Windows reports opening a folder as "permission denied".
        if os.path.isdir(path):
            raise ImageLoadError(f'"{label}" is a folder, not an image file.', ErrorKind.IS_DIRECTORY) from None
        raise ImageLoadError(f'"{label}" cannot be read: permission denied.', ErrorKind.PERMISSION_DENIED) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ImageLoadError(f'"{label}" could not be read ({reason}).', ErrorKind.UNREADABLE) from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageLoadError(f'"{label}" is too large to open (over {MAX_FILE_BYTES // 2**20} MB).', ErrorKind.TOO_LARGE)
    return data


# --- process-wide decode memory budget ------------------------------------------------------


def _default_decode_budget() -> int:
    """1.5 GiB, or a quarter of physical memory on a smaller machine.

    1.5 GiB lets one worst-case picture (a 160 MP full-size decode, ~1.3 GB measured) or several
    ordinary ones decode at once, and stays well inside an 8 GB laptop running the GUI, torch and
    the model (~0.6 GB); on a 4 GB machine a quarter keeps the decoder from pushing it into swap.
    """
    budget = 1536 * 2**20
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return budget
    return min(budget, max(physical // 4, 256 * 2**20))


DECODE_BUDGET_BYTES = _default_decode_budget()


class DecodeBudget:
    """A counter of bytes that decodes in progress may use, shared by every thread.

    A decode reserves its estimated peak before touching pixels and waits until that fits;
    an estimate larger than the whole budget runs alone (it waits for everything else to
    finish, and nothing starts beside it). Waiters are served in arrival order, so a big
    picture is not starved by a stream of small ones.
    """

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.in_use = 0
        self.active = 0
        self.peak = 0  # the most reserved at once, for benchmarks and tests
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    @contextmanager
    def reserve(self, nbytes: int):
        nbytes = max(0, int(nbytes))
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving or (self.active and self.in_use + nbytes > self.limit):
                self._cond.wait()
            self._serving += 1
            self.in_use += nbytes
            self.active += 1
            self.peak = max(self.peak, self.in_use)
            self._cond.notify_all()  # the next in line may fit too
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= nbytes
                self.active -= 1
                self._cond.notify_all()


_budget = DecodeBudget(DECODE_BUDGET_BYTES)

# Bytes per pixel as Pillow stores each mode (RGB, LA and PA use 4 bytes, not 3 or 2).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Decoders that fill a buffer of their own before Pillow copies it into the image.
_DOUBLE_BUFFERED = {"WEBP", "HEIF", "AVIF"}


def _reduction_factor(size: tuple[int, int], min_side: int | None) -> int:
    """The integer box-reduction that leaves the shorter side in [min_side, 2 * min_side)."""
    if not min_side:
        return 1
    factor = min(size) // min_side
    return factor if factor >= 2 else 1


def _estimate_peak(size: tuple[int, int], mode: str, fmt: str | None, factor: int, data_len: int) -> int:
    """What decoding and converting this picture holds at its worst, from the header alone.

    The file's bytes, the decoded picture, the RGB result and (for a mode change) one strip of
    temporaries; conversions run by strips, so no full-size intermediate is made.
    """
    w, h = size
    decoded = w * h * _PIXEL_BYTES.get(mode, 4) * (2 if fmt in _DOUBLE_BUFFERED else 1)
    if mode == "RGB" and factor == 1:
        return data_len + decoded  # the decoded picture is the result
    result = math.ceil(w / factor) * math.ceil(h / factor) * 4
    return data_len + decoded + result + 3 * 4 * STRIP_PIXELS


# --- Pillow's warnings, per decode and thread-safely -----------------------------------------
#
# Pillow reports recoverable damage ("Corrupt EXIF data", a bad MPO index, ...) with
# warnings.warn, which reaches stderr where no user sees it. warnings.catch_warnings swaps
# process-wide state and is not thread-safe (Python 3.11), so instead one showwarning hook is
# installed at import: while a decode runs in a thread, that thread's warnings go to its own
# list (a thread-local) and end up in LoadedImage.warnings; everything else is passed on to the
# previous hook unchanged. (If other code later replaces showwarning -- pytest does, per test --
# Pillow's warnings simply reach that code as before.)

_local = threading.local()
_previous_showwarning = _warnings.showwarning


def _route_warning(message, category, filename, lineno, file=None, line=None):
    sink = getattr(_local, "sink", None)
    if sink is not None:
        sink.append((category, str(message)))
        return
    _previous_showwarning(message, category, filename, lineno, file, line)


_warnings.showwarning = _route_warning
# Python shows a given warning once per code location by default, so the second damaged file
# would go unreported; Pillow's UserWarnings are shown every time. Appended, so a filter the
# user or the application sets (e.g. "ignore", or "error") still wins.
_warnings.filterwarnings("always", category=UserWarning, module=r"PIL(\.|$)", append=True)


@contextmanager
def _collecting_warnings():
    sink: list[tuple[type, str]] = []
    outer = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield sink
    finally:
        _local.sink = outer


def _pillow_warning_messages(label: str, caught: list[tuple[type, str]]) -> list[str]:
    out: list[str] = []
    for category, text in caught:
        if issubclass(category, Image.DecompressionBombWarning):
            continue  # our own MAX_PIXELS check covers it (160 MP is below it)
        if "exif" in text.lower() or "tag" in text.lower():
            message = f'"{label}" has damaged EXIF metadata, which was ignored.'
        else:
            message = f'"{label}" has a minor defect the decoder worked around ({text.strip().rstrip(".")}).'
        if message not in out:
            out.append(message)
    return out


# --- colour profiles -------------------------------------------------------------------------

_cms_lock = threading.Lock()
_cms_cache: "OrderedDict[bytes, tuple[object | None, str | None]]" = OrderedDict()
_CMS_CACHE_SIZE = 16  # distinct profiles in a photo library are few: one per camera or editor


def _colour_transform(icc: bytes, mode: str):
    """-> (ImageCms transform from the embedded profile to sRGB, or None; a problem, or None).

    An sRGB profile is converted too (a near no-op): names are no evidence ("sRGB" profiles
    with other curves exist), and the transform runs on the reduced picture, so it is cheap.
    Transforms are cached per profile and built with NOCACHE, which is what makes sharing one
    between threads safe in littlecms.
    """
    key = bytes(mode, "ascii") + b"\0" + icc
    with _cms_lock:
        if key in _cms_cache:
            _cms_cache.move_to_end(key)
            return _cms_cache[key]
    outcome = _build_transform(icc, mode)
    with _cms_lock:
        _cms_cache[key] = outcome
        while len(_cms_cache) > _CMS_CACHE_SIZE:
            _cms_cache.popitem(last=False)
    return outcome


def _build_transform(icc: bytes, mode: str):
    try:
        from PIL import ImageCms
    except ImportError:  # a Pillow built without littlecms
        return None, "unsupported"
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip().upper()
        expected = "CMYK" if mode == "CMYK" else "RGB"
        if space != expected:
            return None, "mismatch"
        transform = ImageCms.buildTransform(
            profile, ImageCms.createProfile("sRGB"), mode, "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL, flags=ImageCms.Flags.NOCACHE,
        )
    except Exception:  # PyCMSError, OSError, ...: a damaged or unusable profile
        return None, "damaged"
    return transform, None


def _colour_warning(label: str, problem: str) -> str:
    if problem == "mismatch":
        return f'"{label}" has a colour profile that does not match its pixels; its colours were left as stored.'
    if problem == "unsupported":
        return f'"{label}" has a colour profile, but colour management is not available; colours may be off.'
    return f'"{label}" has a damaged colour profile; its colours were left as stored and may be slightly off.'


# --- decoding ------------------------------------------------------------------------------

_heif_lock = threading.Lock()
_heif_state: bool | None = None  # None: not tried yet; True: registered; False: unavailable


def _heif_available() -> bool:
    """Register pillow-heif's opener once, on first need; tolerate its absence."""
    global _heif_state
    if _heif_state is None:
        with _heif_lock:
            if _heif_state is None:
                try:
                    import pillow_heif

                    pillow_heif.register_heif_opener()
                    _heif_state = True
                except Exception:  # not installed, or its native library failed to load
                    _heif_state = False
    return _heif_state


def _accepted_formats() -> list[str]:
    Image.init()  # Image.open raises KeyError for a format name no plugin registered
    return [name for name in _ACCEPTED_FORMATS if name in Image.OPEN]


def _is_truncation_error(exc: BaseException) -> bool:
    if isinstance(exc, EOFError):
        return True
    text = str(exc).lower()
    return "truncated" in text or "end of file" in text or "unexpected end" in text


def _decode(data: bytes, label: str, min_side: int | None) -> LoadedImage:
    if not data:
        raise ImageLoadError(f'"{label}" is empty (0 bytes), so there is no picture in it.', ErrorKind.EMPTY_FILE)
    if data[4:8] == b"ftyp":  # ISO media file: HEIF/HEIC/AVIF photos (or a video)
        _heif_available()
    with _collecting_warnings() as caught:
        loaded = _decode_collected(data, label, min_side)
    loaded.warnings.extend(_pillow_warning_messages(label, caught))
    return loaded


def _decode_collected(data: bytes, label: str, min_side: int | None) -> LoadedImage:
    warnings: list[str] = []
    incomplete = _structurally_incomplete(data)
    if incomplete and data[:2] == b"\xff\xd8":
        # Let libjpeg finish this one picture with what is there; see the module docstring.
        data = data + b"\xff\xd9"

    try:
        opened = Image.open(io.BytesIO(data), formats=_accepted_formats())
    except UnidentifiedImageError:
        raise _unidentified_error(data, label) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(
            f'"{label}" claims a picture too large to open safely (over {MAX_PIXELS / 1e6:.0f} megapixels).',
            ErrorKind.TOO_LARGE,
        ) from None
    except MemoryError:
        raise ImageLoadError(f'"{label}" is too large to decode with the memory available.', ErrorKind.TOO_LARGE) from None
    except Exception as exc:  # Pillow's plugins raise many types on malformed headers
        raise _decode_error(exc, label, _sniff_format(data), incomplete) from None

    with opened:  # everything that touches the plugin object happens before it is closed
        fmt = opened.format
        header_size = opened.size
        _check_dimensions(header_size, label)
        try:
            if min_side and fmt in _JPEG_FORMATS:
                # libjpeg decodes directly at the largest 1/8-step scale keeping both sides >= min_side.
                opened.draft("RGB", (min_side, min_side))
            factor = _reduction_factor(opened.size, min_side)
            # Wait for room in the process-wide budget before any pixel is decoded.
            with _budget.reserve(_estimate_peak(opened.size, opened.mode, fmt, factor, len(data))):
                opened.load()
                orientation, exif_ok = _orientation(opened)
                gps_country = _gps_country(opened) if exif_ok else None
                image, colour_problem = _to_rgb(opened, label, factor, opened.info.get("icc_profile"))
                if image is opened:
                    # Detach from the plugin object by sharing its pixels instead of copying them
                    # (a read-only buffer from a decoder must be copied before we write to it).
                    image = opened.copy() if getattr(opened, "readonly", 0) else opened._new(opened.im)
                frames = _frame_count(opened)
        except ImageLoadError:
            raise
        except MemoryError:
            raise ImageLoadError(f'"{label}" is too large to decode with the memory available.', ErrorKind.TOO_LARGE) from None
        except Exception as exc:
            raise _decode_error(exc, label, fmt, incomplete) from None

    if orientation in _ORIENTATION_FIX:
        image = image.transpose(_ORIENTATION_FIX[orientation])
    # Drop EXIF, the colour profile and the rest: the pixels are upright and sRGB now, and a
    # stale orientation tag or profile would invite a second correction downstream.
    image.info = {}

    w, h = header_size
    original_size = (h, w) if orientation in (5, 6, 7, 8) else (w, h)

    if incomplete:
        warnings.append(
            f'"{label}" is incomplete (its end is missing, e.g. from an interrupted copy or download); '
            "part of the picture may be missing, so the result may be unreliable."
        )
    elif fmt in _JPEG_FORMATS:
        flat = _flat_grey_tail(image)
        if flat >= 0.999:
            warnings.append(
                f'"{label}" decodes to a flat grey picture, as when the file\'s data is missing or zeroed '
                "(e.g. by a failing memory card); there is nothing to identify."
            )
        elif flat > 0:
            warnings.append(
                f'"{label}" looks damaged: the bottom {flat:.0%} of the picture is flat grey, as when the '
                "file's data is missing or zeroed (e.g. by a failing memory card); the result may be unreliable."
            )
    if colour_problem:
        warnings.append(_colour_warning(label, colour_problem))
    if not exif_ok:
        warnings.append(f'"{label}" has damaged orientation data; the picture may be shown rotated.')
    if frames > 1:
        warnings.append(f'"{label}" contains {frames} frames; only the first one is used.')
    short, long_ = min(original_size), max(original_size)
    if short < SMALL_SIDE:
        warnings.append(
            f'"{label}" is very small ({original_size[0]}x{original_size[1]} pixels); results are unreliable.'
        )
    elif short < SMALL_PHOTO_SIDE:
        warnings.append(
            f'"{label}" is a small photo ({original_size[0]}x{original_size[1]} pixels): the result is less '
            "reliable; a larger or closer photo helps."
        )
    elif long_ / short > ELONGATED_RATIO:
        warnings.append(
            f'"{label}" is very elongated ({original_size[0]}x{original_size[1]} pixels); '
            "the identification looks mainly at its central part."
        )
    return LoadedImage(image=image, original_size=original_size, format=fmt, warnings=warnings,
                       gps_country=gps_country)


def _check_dimensions(size: tuple[int, int], label: str) -> None:
    """Refuse, from the header alone, what would be unsafe or absurd to decode."""
    w, h = size
    if w * h > MAX_PIXELS:
        raise ImageLoadError(
            f'"{label}" is too large to open safely ({w}x{h} pixels, '
            f"{w * h / 1e6:.0f} megapixels; the limit is {MAX_PIXELS / 1e6:.0f}).",
            ErrorKind.TOO_LARGE,
        )
    if max(w, h) > MAX_ASPECT_RATIO * min(w, h):
        raise ImageLoadError(
            f'"{label}" is {w}x{h} pixels, a line rather than a photo '
            f"(more than {MAX_ASPECT_RATIO:.0f} times longer than wide), so there is nothing to identify.",
            ErrorKind.BAD_DIMENSIONS,
        )


def _gps_country(im: Image.Image) -> str | None:
    """Country of the EXIF GPS position, if any; a damaged GPS block is simply no location."""
    try:
        from .region import country_of_photo

        return country_of_photo(im.getexif())
    except Exception:
        return None


def _orientation(im: Image.Image) -> tuple[int, bool]:
    """-> (EXIF orientation 1-8, whether the EXIF data could be read). HEIF arrives upright (1)."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:
        return 1, False
    return (value if isinstance(value, int) and 1 <= value <= 8 else 1), True


def _frame_count(im: Image.Image) -> int:
    """Frames that are alternatives to the one we use (animation, stereo or multi-angle views)."""
    if im.format == "MPO":
        # MPO also carries a camera's preview and an Ultra HDR / ISO 21496 gain map as extra
        # "frames" (type Undefined or Large Thumbnail): those are parts of this one photo.
        try:
            entries = im.mpinfo[0xB002]
            return 1 + sum("Multi-Frame" in str(e["Attribute"]["MPType"]) for e in entries[1:])
        except Exception:
            pass
    # n_frames walks the file for GIF/APNG; cheap next to decoding, and only once per image.
    try:
        return int(getattr(im, "n_frames", 1))
    except Exception:
        return 1


def _to_rgb(im: Image.Image, label: str, factor: int, icc: bytes | None) -> tuple[Image.Image, str | None]:
    """-> (the picture as sRGB RGB, box-reduced by ``factor``; a colour-profile problem or None).

    Reduction comes before any full-size work where it does not change the result, and mode
    changes run by strips (see ``STRIP_PIXELS``): the peak is the decoded picture plus the
    result, not two or three full-size intermediates.
    """
    mode = im.mode
    transform, problem = None, None
    if icc and mode in ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK"):
        # A grey profile is left alone: grey photos are rare and grey TRCs close to sRGB's.
        transform, problem = _colour_transform(icc, "CMYK" if mode == "CMYK" else "RGB")
    if mode == "RGB":
        out = im.reduce(factor) if factor > 1 else im
    else:
        out = _convert_by_strips(im, label, factor, transform if mode == "CMYK" else None)
    if transform is not None and mode != "CMYK":
        from PIL import ImageCms

        try:
            ImageCms.applyTransform(out, transform, inPlace=True)
        except Exception:
            problem = "damaged"
    return out, problem


def _convert_by_strips(im: Image.Image, label: str, factor: int, cmyk_transform) -> Image.Image:
    convert = _strip_converter(im, label, factor, cmyk_transform)
    w, h = im.size
    rows = max(factor, (STRIP_PIXELS // max(1, w)) // factor * factor)  # whole reduction blocks
    if rows >= h:
        return convert(im)
    out = Image.new("RGB", (math.ceil(w / factor), math.ceil(h / factor)))
    for top in range(0, h, rows):
        out.paste(convert(im.crop((0, top, w, min(h, top + rows)))), (0, top // factor))
    return out


def _reduced(im: Image.Image, factor: int) -> Image.Image:
    return im.reduce(factor) if factor > 1 else im


def _strip_converter(im: Image.Image, label: str, factor: int, cmyk_transform):
    """A function taking a strip of ``im`` to RGB, reduced by ``factor`` (same result as whole)."""
    mode = im.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        gain, offset = _depth_mapping(im)

        def high_depth(part):
            grey = part.convert("F").point(lambda v: v * gain + offset).convert("L")
            return _reduced(grey, factor).convert("RGB")

        return high_depth
    if "A" in mode or "a" in mode or "transparency" in im.info:

        def flatten(part):
            rgba = part.convert("RGBA")  # also applies palette / single-colour (tRNS) transparency
            flat = Image.new("RGB", rgba.size, BACKGROUND)
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return _reduced(flat, factor)

        return flatten
    if cmyk_transform is not None:
        from PIL import ImageCms

        return lambda part: ImageCms.applyTransform(_reduced(part, factor), cmyk_transform)
    if mode == "L":
        return lambda part: _reduced(part, factor).convert("RGB")

    def plain(part):
        try:
            rgb = part.convert("RGB")  # 1, P, CMYK (incl. Adobe-inverted), YCbCr, ...
        except ValueError:
            raise ImageLoadError(
                f'"{label}" uses a colour format ({mode}) that SnakeID cannot convert.',
                ErrorKind.UNSUPPORTED_FORMAT,
            ) from None
        return _reduced(rgb, factor)

    return plain


def _depth_mapping(im: Image.Image) -> tuple[float, float]:
    """16-bit, 32-bit integer and float greyscale -> (gain, offset) to 8-bit, scaling, not clipping.

    I;16 is full-range 16-bit: 0..65535 -> 0..255. I and F carry no declared range, so it is
    inferred: values within 0..255 (I) or 0..1 (F) are taken as that range, I within 0..65535 as
    16-bit, anything else is stretched from its minimum to its maximum.
    """
    if im.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    else:
        low, high = im.getextrema()
        if not (math.isfinite(low) and math.isfinite(high)):
            low, high = 0.0, 1.0 if im.mode == "F" else 255.0
        elif im.mode == "I" and low >= 0 and high <= 255:
            low, high = 0.0, 255.0
        elif im.mode == "I" and low >= 0 and high <= 65535:
            low, high = 0.0, 65535.0
        elif im.mode == "F" and low >= 0 and high <= 1:
            low, high = 0.0, 1.0
        elif im.mode == "F" and low >= 0 and high <= 255:
            low, high = 0.0, 255.0
    gain = 255.0 / (high - low) if high > low else 0.0
    offset = -low * gain + 0.5  # + 0.5: F -> L truncates, this rounds
    if high <= low:
        offset = min(max(low, 0.0), 255.0) + 0.5
    return gain, offset


def _flat_grey_tail(image: Image.Image) -> float:
    """The share of the picture's height, at the bottom, that is the flat mid-grey libjpeg leaves
    where scan data is zeroed or missing (blocks with no coefficients decode to 128 grey); 0.0 if
    that region is under an eighth of the height (a photo's grey band is never this flat).

    Judged on a copy reduced by a multiple of 8, so every sample covers whole 8x8 blocks (at any
    draft scale) and the texture zeroed coefficients can leave averages out.
    """
    w, h = image.size
    k = 8 * max(1, math.ceil(max(w, h) / 2048))
    small = image.reduce(k) if min(w, h) >= 8 * k else image
    sw, sh = small.size
    if sh < 8:
        return 0.0
    flat = 0
    for y in range(sh - 1, -1, -1):
        extrema = small.crop((0, y, sw, y + 1)).getextrema()
        if not all(high - low <= 2 and abs(low - 128) <= 4 and abs(high - 128) <= 4 for low, high in extrema):
            break
        flat += 1
    return flat / sh if flat >= max(2, sh / 8) else 0.0


# --- telling what went wrong ---------------------------------------------------------------


def _structurally_incomplete(data: bytes) -> bool | None:
    """Whether the bytes visibly lack their format's end (None: no such check for this format)."""
    if data[:3] == b"\xff\xd8\xff":  # JPEG: an EOI after the last start-of-scan
        end = data.rfind(b"\xff\xd9")
        # 0xFF in entropy-coded data is always followed by 0x00 or a restart marker, so neither
        # marker can appear by chance; an EXIF thumbnail's EOI comes before the main scan.
        return end < 0 or data.find(b"\xff\xda", end) >= 0
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return data.rfind(b"IEND") < 0
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return int.from_bytes(data[4:8], "little") + 8 > len(data)
    if data[4:8] == b"ftyp":  # HEIF/AVIF: ISO boxes, each starting with its size
        return _iso_boxes_incomplete(data)
    return None


def _iso_boxes_incomplete(data: bytes) -> bool | None:
    """Whether a top-level ISO box (typically the trailing mdat) runs past the end of the bytes."""
    pos, n = 0, len(data)
    while pos + 8 <= n:
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1:  # 64-bit size follows the type
            if pos + 16 > n:
                return True
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:  # "to the end of the file"
            return False
        if size < 8:
            return None  # not a box layout we understand: no verdict
        pos += size
    return pos > n


_ISO_IMAGE_BRANDS = {
    b"heic": "HEIF", b"heix": "HEIF", b"heim": "HEIF", b"heis": "HEIF", b"hevc": "HEIF",
    b"hevx": "HEIF", b"hevm": "HEIF", b"hevs": "HEIF", b"mif1": "HEIF", b"msf1": "HEIF",
    b"avif": "AVIF", b"avis": "AVIF",
}


def _sniff_format(data: bytes) -> str | None:
    """The accepted format the bytes claim to be by their signature, if any."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data[4:8] == b"ftyp":
        return _ISO_IMAGE_BRANDS.get(data[8:12])
    return None


_FORMAT_NAMES = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "GIF": "GIF", "WEBP": "WebP", "BMP": "BMP",
                 "TIFF": "TIFF", "HEIF": "HEIC/HEIF", "AVIF": "AVIF"}


def _decode_error(exc: BaseException, label: str, fmt: str | None, incomplete: bool | None) -> ImageLoadError:
    """A decoder failure -> "truncated" when the end is missing, else "corrupt".

    ``incomplete`` is the structural verdict; where there is one it wins over the wording of
    the exception (a JPEG with its end marker that "runs out of data" is damaged inside).
    """
    if isinstance(exc, ImageLoadError):
        return exc
    name = _FORMAT_NAMES.get(fmt or "", "image")
    if incomplete or (incomplete is None and _is_truncation_error(exc)):
        return ImageLoadError(
            f'"{label}" is an incomplete {name} file (its end is missing, e.g. from an interrupted copy or download).',
            ErrorKind.TRUNCATED,
        )
    return ImageLoadError(f'"{label}" is a damaged {name} file that cannot be decoded.', ErrorKind.CORRUPT)


def _unidentified_error(data: bytes, label: str) -> ImageLoadError:
    """No accepted decoder recognised the bytes: say what they are, as far as we can tell."""
    claimed = _sniff_format(data)
    if claimed in ("HEIF", "AVIF") and claimed not in _accepted_formats():
        return ImageLoadError(
            f'"{label}" is a {_FORMAT_NAMES[claimed]} picture, but support for that format is not installed '
            f"(it needs the pillow-heif package for HEIC, a Pillow with AVIF for AVIF).",
            ErrorKind.UNSUPPORTED_FORMAT,
        )
    if claimed is not None:
        if _structurally_incomplete(data):
            return ImageLoadError(
                f'"{label}" is an incomplete {_FORMAT_NAMES[claimed]} file (its end is missing).', ErrorKind.TRUNCATED
            )
        return ImageLoadError(f'"{label}" is a damaged {_FORMAT_NAMES[claimed]} file that cannot be decoded.', ErrorKind.CORRUPT)

    head = data[:1024]
    text_head = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    unsupported = [
        (head.startswith(b"8BPS"), "a Photoshop (PSD) document"),
        (head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"), "a JPEG 2000 picture"),
        (b"<svg" in text_head, "an SVG drawing"),
    ]
    for matched, what in unsupported:
        if matched:
            return ImageLoadError(
                f'"{label}" is {what}, which SnakeID cannot read; save it as JPEG or PNG first.', ErrorKind.UNSUPPORTED_FORMAT
            )
    if text_head.startswith((b"<!doctype html", b"<html")) or b"<head" in text_head or b"<body" in text_head:
        what = "a web page (HTML), perhaps saved from a browser instead of the picture itself"
    elif head.startswith(b"%PDF"):
        what = "a PDF document"
    elif data[4:8] == b"ftyp":
        what = "a video or other media file"
    elif head.startswith(b"PK\x03\x04"):
        what = "a ZIP archive"
    elif _looks_like_text(head):
        what = "a text file"
    else:
        return ImageLoadError(
            f'"{label}" is not an image: its contents match none of the picture formats SnakeID reads.',
            ErrorKind.NOT_AN_IMAGE,
        )
    return ImageLoadError(f'"{label}" is not an image: it is {what}.', ErrorKind.NOT_AN_IMAGE)


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)
