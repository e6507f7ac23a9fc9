"""The one way SnakeID reads a picture: from a path or from bytes, to an RGB ``PIL.Image``.

Used by the CLI, the batch engine, the GUI and training's evaluation, so every photo is
decoded the same way everywhere. What it guarantees:

* The source is opened read-only, read once into memory and closed before decoding; it is
  never written to. Non-regular files (FIFOs, devices) are refused without being read.
* Only the decoders for the formats we accept are tried (``Image.open(formats=...)``), so a
  hostile file cannot reach Pillow's rarer plugins.
* Every error is an :class:`ImageLoadError` whose ``str`` is one sentence naming the file and
  whose ``kind`` is a stable code (see ``KINDS``).
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

Decompression bombs: anything over ``MAX_PIXELS`` (160 MP, checked on the header before any
pixel is decoded) is refused, as is anything Pillow itself flags (``DecompressionBombError``,
and ``DecompressionBombWarning`` where warning filters turn it into an exception). 160 MP
covers 100-150 MP medium-format cameras and 108 MP phone modes, stays under Pillow's own
hard stop (~179 MP by default), and caps a full decode at ~640 MB (RGBA) per image while
several images decode at once. (Pillow prints a DecompressionBombWarning for 90-160 MP
images; silencing it would need ``warnings.catch_warnings``, which is not thread-safe either.)

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
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import ImageLoadError

__all__ = [
    "IMAGE_EXTENSIONS",
    "KINDS",
    "LoadedImage",
    "MAX_PIXELS",
    "is_image_path",
    "load_image",
    "load_image_bytes",
]

MAX_PIXELS = 160_000_000
# Larger files are refused before being read: no photo we accept needs more, and the bytes
# are held in memory while decoding.
MAX_FILE_BYTES = 512 * 1024 * 1024
SMALL_SIDE = 64  # shorter side below this: the model sees mostly upsampling blur
ELONGATED_RATIO = 3.0  # classification looks at a centre square; beyond this most is cropped
BACKGROUND = (128, 128, 128)

KINDS = frozenset(
    {
        "not_found",
        "is_directory",
        "permission_denied",
        "empty_file",
        "not_an_image",
        "unsupported_format",
        "truncated",
        "corrupt",
        "too_large",
        "unreadable",
    }
)


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
            "unsupported_format",
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
                raise ImageLoadError(f'"{label}" is not a regular file, so it cannot be a photo.', "unreadable")
            if info.st_size > MAX_FILE_BYTES:
                raise ImageLoadError(
                    f'"{label}" is too large to open ({info.st_size / 2**20:.0f} MB; '
                    f"the limit is {MAX_FILE_BYTES // 2**20} MB).",
                    "too_large",
                )
            # +1 so a file that grew after fstat is still caught by the size limit.
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ImageLoadError(
            f'"{label}" was not found (it may have been moved, renamed or deleted).', "not_found"
        ) from None
    except NotADirectoryError:
        raise ImageLoadError(f'"{label}" was not found (part of its path is not a folder).', "not_found") from None
    except IsADirectoryError:
        raise ImageLoadError(f'"{label}" is a folder, not an image file.', "is_directory") from None
    except PermissionError:
        # Windows reports opening a folder as "permission denied".
        if os.path.isdir(path):
            raise ImageLoadError(f'"{label}" is a folder, not an image file.', "is_directory") from None
        raise ImageLoadError(f'"{label}" cannot be read: permission denied.', "permission_denied") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ImageLoadError(f'"{label}" could not be read ({reason}).', "unreadable") from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageLoadError(f'"{label}" is too large to open (over {MAX_FILE_BYTES // 2**20} MB).', "too_large")
    return data


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
        raise ImageLoadError(f'"{label}" is empty (0 bytes), so there is no picture in it.', "empty_file")
    if data[4:8] == b"ftyp":  # ISO media file: HEIF/HEIC/AVIF photos (or a video)
        _heif_available()

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
            "too_large",
        ) from None
    except MemoryError:
        raise ImageLoadError(f'"{label}" is too large to decode with the memory available.', "too_large") from None
    except Exception as exc:  # Pillow's plugins raise many types on malformed headers
        raise _decode_error(exc, label, _sniff_format(data), incomplete) from None

    with opened:  # everything that touches the plugin object happens before it is closed
        fmt = opened.format
        header_size = opened.size
        if header_size[0] * header_size[1] > MAX_PIXELS:
            raise ImageLoadError(
                f'"{label}" is too large to open safely ({header_size[0]}x{header_size[1]} pixels, '
                f"{header_size[0] * header_size[1] / 1e6:.0f} megapixels; the limit is {MAX_PIXELS / 1e6:.0f}).",
                "too_large",
            )
        try:
            if min_side and fmt in _JPEG_FORMATS:
                # libjpeg decodes directly at the largest 1/8-step scale keeping both sides >= min_side.
                opened.draft("RGB", (min_side, min_side))
            opened.load()
            orientation, exif_ok = _orientation(opened)
            image = _to_rgb(opened, label)
            if min_side and min(image.size) // min_side >= 2:
                # Box reduction by an integer factor: the shorter side ends in [min_side, 1.5 * min_side].
                image = image.reduce(min(image.size) // min_side)
            if image is opened:
                image = image.copy()  # detach from the plugin object (and its EXIF) before counting frames
            frames = _frame_count(opened)
        except ImageLoadError:
            raise
        except MemoryError:
            raise ImageLoadError(f'"{label}" is too large to decode with the memory available.', "too_large") from None
        except Exception as exc:
            raise _decode_error(exc, label, fmt, incomplete) from None
        # A CMYK or grey profile would be wrong on the RGB result; only RGB-family ones carry over.
        icc_profile = opened.info.get("icc_profile") if opened.mode in ("RGB", "RGBA", "RGBX", "P", "PA") else None

    if orientation in _ORIENTATION_FIX:
        image = image.transpose(_ORIENTATION_FIX[orientation])
    # Drop EXIF and the rest: the pixels are upright now, and a stale orientation tag would
    # invite a second rotation downstream. Keep the colour profile for display.
    image.info = {"icc_profile": icc_profile} if icc_profile else {}

    w, h = header_size
    original_size = (h, w) if orientation in (5, 6, 7, 8) else (w, h)

    if incomplete:
        warnings.append(
            f'"{label}" is incomplete (its end is missing, e.g. from an interrupted copy or download); '
            "part of the picture may be missing, so the result may be unreliable."
        )
    if not exif_ok:
        warnings.append(f'"{label}" has damaged orientation data; the picture may be shown rotated.')
    if frames > 1:
        warnings.append(f'"{label}" contains {frames} frames; only the first one is used.')
    short, long_ = min(original_size), max(original_size)
    if short < SMALL_SIDE:
        warnings.append(
            f'"{label}" is very small ({original_size[0]}x{original_size[1]} pixels); results are unreliable.'
        )
    elif long_ / short > ELONGATED_RATIO:
        warnings.append(
            f'"{label}" is very elongated ({original_size[0]}x{original_size[1]} pixels); '
            "the identification looks mainly at its central part."
        )
    return LoadedImage(image=image, original_size=original_size, format=fmt, warnings=warnings)


def _orientation(im: Image.Image) -> tuple[int, bool]:
    """-> (EXIF orientation 1-8, whether the EXIF data could be read). HEIF arrives upright (1)."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:
        return 1, False
    return (value if isinstance(value, int) and 1 <= value <= 8 else 1), True


def _frame_count(im: Image.Image) -> int:
    # n_frames walks the file for GIF/APNG; cheap next to decoding, and only once per image.
    try:
        return int(getattr(im, "n_frames", 1))
    except Exception:
        return 1


def _to_rgb(im: Image.Image, label: str) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _high_depth_to_rgb(im)
    if "A" in mode or "a" in mode or "transparency" in im.info:
        rgba = im.convert("RGBA")  # also applies palette / single-colour (tRNS) transparency
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    try:
        return im.convert("RGB")  # 1, L, P, CMYK (incl. Adobe-inverted), YCbCr, ...
    except ValueError:
        raise ImageLoadError(
            f'"{label}" uses a colour format ({mode}) that SnakeID cannot convert.',
            "unsupported_format",
        ) from None


def _high_depth_to_rgb(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale -> 8-bit RGB by scaling, not clipping.

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
    return im.convert("F").point(lambda v: v * gain + offset).convert("L").convert("RGB")


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
    return None


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
            "truncated",
        )
    return ImageLoadError(f'"{label}" is a damaged {name} file that cannot be decoded.', "corrupt")


def _unidentified_error(data: bytes, label: str) -> ImageLoadError:
    """No accepted decoder recognised the bytes: say what they are, as far as we can tell."""
    claimed = _sniff_format(data)
    if claimed in ("HEIF", "AVIF") and claimed not in _accepted_formats():
        return ImageLoadError(
            f'"{label}" is a {_FORMAT_NAMES[claimed]} picture, but support for that format is not installed '
            f"(it needs the pillow-heif package for HEIC, a Pillow with AVIF for AVIF).",
            "unsupported_format",
        )
    if claimed is not None:
        if _structurally_incomplete(data):
            return ImageLoadError(
                f'"{label}" is an incomplete {_FORMAT_NAMES[claimed]} file (its end is missing).', "truncated"
            )
        return ImageLoadError(f'"{label}" is a damaged {_FORMAT_NAMES[claimed]} file that cannot be decoded.', "corrupt")

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
                f'"{label}" is {what}, which SnakeID cannot read; save it as JPEG or PNG first.', "unsupported_format"
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
            "not_an_image",
        )
    return ImageLoadError(f'"{label}" is not an image: it is {what}.', "not_an_image")


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)
