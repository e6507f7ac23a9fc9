"""The image loader against a bad-input corpus generated here, plus orientation, depth and draft checks.

Every corpus entry is built in a temporary folder by the test itself (nothing downloaded) and
listed with its expected outcome; each test also proves the input file was left untouched.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image, ImageDraw, ImageFile, features

from snakeid_desktop import imageload
from snakeid_desktop.errors import ImageLoadError
from snakeid_desktop.imageload import IMAGE_EXTENSIONS, LoadedImage, is_image_path, load_image, load_image_bytes
from tests.conftest import REPO_ROOT

GREY = (128, 128, 128)  # the documented neutral background
RED, GREEN, BLUE, YELLOW = (220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 40)

# Images between Pillow's warning level (~89 MP) and ours make Pillow warn before we refuse them.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


# --- generators ------------------------------------------------------------------------------


def not_about_size(warnings: list[str]) -> list[str]:
    """The warnings other than "a small photo" (small test pictures get it by design)."""
    return [w for w in warnings if "is a small photo" not in w]


def test_small_photos_carry_a_less_reliable_warning():
    for size, small in (((149, 400), True), ((400, 120), True), ((150, 150), False), ((640, 480), False)):
        loaded = load_image_bytes(encode(scene(size), "PNG"))
        said = [w for w in loaded.warnings if "is a small photo" in w]
        assert bool(said) == small, (size, loaded.warnings)
        if small:
            assert f"{size[0]}x{size[1]} pixels" in said[0] and "less reliable" in said[0]
    tiny = load_image_bytes(encode(scene((40, 30)), "PNG"))
    assert any("very small" in w for w in tiny.warnings) and not any("is a small photo" in w for w in tiny.warnings)


def scene(size=(320, 240)) -> Image.Image:
    """Something photo-like: a gradient with a few shapes, so encoders have real work."""
    w, h = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((w // 8, h // 8, w // 2, h // 2), fill=RED)
    draw.rectangle((w // 2, h // 2, w - w // 8, h - h // 8), fill=BLUE)
    draw.line((0, h - 1, w - 1, 0), fill=GREEN, width=max(1, w // 40))
    return image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims an enormous picture (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def jpeg_claiming_size(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16), RED), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (100, 80), c) for c in (RED, BLUE, GREEN)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def rgba_png() -> bytes:
    image = Image.new("RGBA", (100, 80), (0, 0, 0, 0))  # fully transparent left half
    image.paste((200, 20, 20, 255), (50, 0, 100, 80))  # opaque red right half
    return encode(image, "PNG")


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (100, 80), 0)
    image.putpalette([0, 0, 0, 200, 20, 20] + [0] * (254 * 3))
    image.paste(1, (50, 0, 100, 80))
    return encode(image, "PNG", transparency=0)  # index 0 (left half) transparent


def la_png() -> bytes:
    image = Image.new("LA", (100, 80), (255, 0))
    image.paste((60, 255), (50, 0, 100, 80))
    return encode(image, "PNG")


def gray16_png() -> bytes:
    # 1000/65535 is nearly black but clips to white if mishandled; 32768 is mid grey.
    # (Built from bytes: Pillow's paste() of a number into I;16 mangles the value.)
    row = [1000] * 32 + [32768] * 32 + [65535] * 32
    image = Image.frombytes("I;16", (96, 64), struct.pack("<96H", *row) * 64)
    return encode(image, "PNG")


def float_tiff() -> bytes:
    image = Image.new("F", (96, 64))
    image.paste(0.0, (0, 0, 32, 64))
    image.paste(0.5, (32, 0, 64, 64))
    image.paste(1.0, (64, 0, 96, 64))
    return encode(image, "TIFF")


def int32_tiff() -> bytes:
    image = Image.new("I", (96, 64))
    image.paste(-100_000, (0, 0, 32, 64))
    image.paste(0, (32, 0, 64, 64))
    image.paste(100_000, (64, 0, 96, 64))
    return encode(image, "TIFF")


def heic_bytes() -> bytes:
    if not imageload._heif_available():
        pytest.skip("pillow-heif is not installed")
    try:
        return encode(scene(), "HEIF", quality=90)
    except Exception as exc:  # pillow-heif without an encoder
        pytest.skip(f"pillow-heif cannot encode HEIC here: {exc}")


def avif_bytes() -> bytes:
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    return encode(scene(), "AVIF", quality=90)


def truncated(data: bytes, fraction: float = 0.5) -> bytes:
    return data[: int(len(data) * fraction)]


def corrupt_png_crc() -> bytes:
    data = bytearray(encode(scene(), "PNG"))
    idat = data.find(b"IDAT")
    data[idat + 20] ^= 0xFF
    return bytes(data)


# --- the corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ok:
    """Decodes; optional checks on the result."""

    fmt: str | None = None
    size: tuple[int, int] | None = None
    warning: str | None = None  # a substring one of the warnings must contain
    check: Callable[[LoadedImage], None] | None = None


@dataclass(frozen=True)
class Fails:
    kind: str
    says: str | None = None  # a substring of the message besides the file name


def near(actual, expected, tolerance=12):
    return all(abs(a - b) <= tolerance for a, b in zip(actual, expected))


def left_grey_right_red(result: LoadedImage) -> None:
    assert near(result.image.getpixel((10, 40)), GREY, 2), result.image.getpixel((10, 40))
    assert near(result.image.getpixel((90, 40)), (200, 20, 20), 2)


def left_grey_right_dark_grey(result: LoadedImage) -> None:
    assert near(result.image.getpixel((10, 40)), GREY, 2)
    assert near(result.image.getpixel((90, 40)), (60, 60, 60), 2)


def sixteen_bit_scaled(result: LoadedImage) -> None:
    px = [result.image.getpixel((x, 15)) for x in (16, 48, 80)]
    assert near(px[0], (4, 4, 4), 1), px  # 1000 / 257 -> 4, not clipped to 255
    assert near(px[1], (128, 128, 128), 1), px
    assert px[2] == (255, 255, 255)


def float_scaled(result: LoadedImage) -> None:
    px = [result.image.getpixel((x, 15)) for x in (16, 48, 80)]
    assert px[0] == (0, 0, 0) and near(px[1], (128, 128, 128), 1) and px[2] == (255, 255, 255), px


def int32_stretched(result: LoadedImage) -> None:
    px = [result.image.getpixel((x, 15)) for x in (16, 48, 80)]
    assert px[0] == (0, 0, 0) and near(px[1], (128, 128, 128), 1) and px[2] == (255, 255, 255), px


def first_frame_red(result: LoadedImage) -> None:
    assert near(result.image.getpixel((40, 30)), RED, 16)


def cmyk_red(result: LoadedImage) -> None:
    r, g, b = result.image.getpixel((40, 30))
    assert r > 200 and g < 60 and b < 60, (r, g, b)


def bilevel_black_and_white(result: LoadedImage) -> None:
    assert result.image.getpixel((10, 10)) == (0, 0, 0)
    assert result.image.getpixel((70, 10)) == (255, 255, 255)


def bilevel_png() -> bytes:
    image = Image.new("1", (80, 64), 0)
    image.paste(1, (40, 0, 80, 64))
    return encode(image, "PNG")


def write(name: str, make: Callable[[], bytes]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(make())
        return path

    return build


def make_directory(folder: Path) -> Path:
    path = folder / "looks_like_a_photo.jpg"
    path.mkdir()
    return path


def make_vanished(folder: Path) -> Path:
    path = folder / "vanished.jpg"
    path.write_bytes(encode(scene(), "JPEG"))
    path.unlink()  # listed a moment ago, gone by the time it is read
    return path


CORPUS: list[tuple[str, Callable[[Path], Path], Ok | Fails]] = [
    # decodable, sometimes with a warning
    ("jpeg", write("plain.jpg", lambda: encode(scene(), "JPEG", quality=90)), Ok("JPEG", (320, 240))),
    ("progressive_jpeg", write("prog.jpg", lambda: encode(scene(), "JPEG", progressive=True)), Ok("JPEG", (320, 240))),
    ("grayscale_jpeg", write("gray.jpg", lambda: encode(scene().convert("L"), "JPEG")), Ok("JPEG", (320, 240))),
    ("cmyk_jpeg", write("cmyk.jpg", lambda: encode(Image.new("CMYK", (100, 80), (0, 255, 255, 0)), "JPEG")), Ok("JPEG", check=cmyk_red)),
    ("png_rgb", write("plain.png", lambda: encode(scene(), "PNG")), Ok("PNG", (320, 240))),
    ("png_rgba_on_grey", write("alpha.png", rgba_png), Ok("PNG", (100, 80), check=left_grey_right_red)),
    ("png_palette_transparency", write("palette.png", palette_png_with_transparency), Ok("PNG", check=left_grey_right_red)),
    ("png_la", write("la.png", la_png), Ok("PNG", check=left_grey_right_dark_grey)),
    ("png_bilevel", write("bilevel.png", bilevel_png), Ok("PNG", check=bilevel_black_and_white)),
    ("png_16bit_not_clipped", write("gray16.png", gray16_png), Ok("PNG", (96, 64), check=sixteen_bit_scaled)),
    ("tiff_float", write("float.tif", float_tiff), Ok("TIFF", (96, 64), check=float_scaled)),
    ("tiff_int32", write("int32.tiff", int32_tiff), Ok("TIFF", check=int32_stretched)),
    ("gif", write("still.gif", lambda: encode(scene(), "GIF")), Ok("GIF", (320, 240))),
    ("animated_gif_first_frame", write("anim.gif", animated_gif), Ok("GIF", (100, 80), "3 frames", first_frame_red)),
    ("webp", write("photo.webp", lambda: encode(scene(), "WEBP")), Ok("WEBP", (320, 240))),
    ("bmp", write("photo.bmp", lambda: encode(scene(), "BMP")), Ok("BMP", (320, 240))),
    ("heic", write("phone.heic", heic_bytes), Ok("HEIF", (320, 240))),
    ("avif", write("photo.avif", avif_bytes), Ok("AVIF", (320, 240))),
    ("unicode_name", write("Schlange_ñ_蛇_🐍.jpg", lambda: encode(scene(), "JPEG")), Ok("JPEG", (320, 240))),
    ("uppercase_extension", write("IMG_0001.JPG", lambda: encode(scene(), "JPEG")), Ok("JPEG", (320, 240))),
    ("png_named_jpg", write("really_a_png.jpg", lambda: encode(scene(), "PNG")), Ok("PNG", (320, 240))),
    ("tiny", write("tiny.png", lambda: encode(scene((40, 30)), "PNG")), Ok("PNG", (40, 30), "very small")),
    ("panorama", write("pano.jpg", lambda: encode(scene((800, 160)), "JPEG")), Ok("JPEG", (800, 160), "elongated")),
    ("truncated_jpeg", write("cut.jpg", lambda: truncated(encode(scene(), "JPEG"))), Ok("JPEG", (320, 240), "incomplete")),
    ("truncated_progressive_jpeg", write("cut_prog.jpg", lambda: truncated(encode(scene(), "JPEG", progressive=True), 0.7)), Ok("JPEG", (320, 240), "incomplete")),
    ("jpeg_missing_end_marker", write("no_eoi.jpg", lambda: encode(scene(), "JPEG")[:-2]), Ok("JPEG", (320, 240), "incomplete")),
    # refused
    ("truncated_png", write("cut.png", lambda: truncated(encode(scene(), "PNG"))), Fails("truncated", "PNG")),
    ("truncated_gif", write("cut.gif", lambda: truncated(encode(scene(), "GIF"))), Fails("truncated")),
    ("truncated_webp", write("cut.webp", lambda: truncated(encode(scene(), "WEBP"))), Fails("truncated")),
    ("corrupt_png_checksum", write("bitrot.png", corrupt_png_crc), Fails("corrupt", "damaged")),
    ("random_bytes", write("noise.jpg", lambda: bytes((i * 7919 + 13) % 251 for i in range(5000))), Fails("not_an_image")),
    ("html_named_png", write("download.png", lambda: b"<!DOCTYPE html>\n<html><head><title>x</title></head></html>"), Fails("not_an_image", "web page")),
    ("text_named_jpg", write("notes.jpg", lambda: b"just some notes, not a picture\n"), Fails("not_an_image", "text")),
    ("pdf_named_jpg", write("scan.jpg", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"), Fails("not_an_image", "PDF")),
    ("other_format_not_accepted", write("legacy.jpg", lambda: encode(scene(), "PCX")), Fails("not_an_image")),
    ("svg", write("drawing.png", lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'), Fails("unsupported_format", "SVG")),
    ("camera_raw", write("DSC_0001.NEF", lambda: encode(scene(), "TIFF")), Fails("unsupported_format", "raw")),
    ("zero_bytes", write("empty.jpg", lambda: b""), Fails("empty_file")),
    ("png_header_bomb", write("bomb.png", lambda: png_claiming_size(100_000, 100_000)), Fails("too_large")),
    ("png_over_our_limit", write("big.png", lambda: png_claiming_size(13_000, 13_000)), Fails("too_large", "169 megapixels")),
    ("jpeg_header_bomb", write("bomb.jpg", lambda: jpeg_claiming_size(65_000, 65_000)), Fails("too_large")),
    ("directory", make_directory, Fails("is_directory", "folder")),
    ("vanished", make_vanished, Fails("not_found")),
]


def snapshot(path: Path):
    if not path.is_file():
        return None
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_mode


@pytest.mark.parametrize("min_side", [None, 64], ids=["full", "min_side_64"])
@pytest.mark.parametrize("build, expected", [pytest.param(b, e, id=name) for name, b, e in CORPUS])
def test_corpus(tmp_path, build, expected, min_side):
    path = build(tmp_path)
    before = snapshot(path)

    if isinstance(expected, Fails):
        with pytest.raises(ImageLoadError) as caught:
            load_image(path, min_side=min_side)
        err = caught.value
        assert err.kind == expected.kind, str(err)
        message = str(err)
        assert str(path) in message  # names the file
        assert message.endswith(".") and "\n" not in message  # one sentence
        if expected.says:
            assert expected.says.lower() in message.lower(), message
    else:
        result = load_image(path, min_side=min_side)
        assert result.image.mode == "RGB"
        result.image.tobytes()  # fully loaded, usable without the file
        if expected.fmt:
            assert result.format == expected.fmt
        if expected.size:
            assert result.original_size == expected.size
        if min_side is None:
            assert result.image.size == result.original_size
        else:  # possibly reduced, never below min_side (nor enlarged)
            assert min(min_side, *result.original_size) <= min(result.image.size) <= min(result.original_size)
        if expected.warning:
            assert any(expected.warning in w for w in result.warnings), result.warnings
        else:
            assert not_about_size(result.warnings) == []
        if expected.check:
            expected.check(result)

    assert snapshot(path) == before, "the loader changed its input"


def test_corpus_has_at_least_twenty_kinds():
    assert len(CORPUS) >= 20
    assert {e.kind for _, _, e in CORPUS if isinstance(e, Fails)} <= imageload.KINDS


def test_permission_denied_gets_its_own_error(tmp_path, monkeypatch):
    # Tests run as root here, where chmod 000 does not stop reads: make the OS call refuse instead.
    path = tmp_path / "locked.jpg"
    path.write_bytes(encode(scene(), "JPEG"))
    before = snapshot(path)
    real_open = os.open

    def refusing_open(file, flags, *args, **kwargs):
        if os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(ImageLoadError) as caught:
        load_image(path)
    assert caught.value.kind == "permission_denied"
    assert str(path) in str(caught.value)
    monkeypatch.undo()
    assert snapshot(path) == before


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_permission_denied_for_real(tmp_path):
    path = tmp_path / "locked.jpg"
    path.write_bytes(encode(scene(), "JPEG"))
    path.chmod(0)
    try:
        with pytest.raises(ImageLoadError) as caught:
            load_image(path)
        assert caught.value.kind == "permission_denied"
    finally:
        path.chmod(0o644)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)
    with pytest.raises(ImageLoadError) as caught:
        load_image(path)
    assert caught.value.kind == "unreadable"


def test_missing_parent_is_not_found(tmp_path):
    file = tmp_path / "file.jpg"
    file.write_bytes(b"x")
    with pytest.raises(ImageLoadError) as caught:
        load_image(file / "child.jpg")
    assert caught.value.kind == "not_found"


# --- orientation -----------------------------------------------------------------------------


def quadrants(width=64, height=40) -> Image.Image:
    """Upright reference: four solid colours, so any rotation or mirror shows."""
    image = Image.new("RGB", (width, height))
    image.paste(RED, (0, 0, width // 2, height // 2))
    image.paste(GREEN, (width // 2, 0, width, height // 2))
    image.paste(BLUE, (0, height // 2, width // 2, height))
    image.paste(YELLOW, (width // 2, height // 2, width, height))
    return image


def stored_for_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    """How a camera stores ``upright`` with this EXIF orientation, from the EXIF definitions
    (row 0 / column 0 of the stored picture are the visual ...), pixel by pixel, so the
    test does not reuse the loader's transpose table."""
    w, h = upright.size
    where = {
        1: lambda x, y: (x, y),  # top, left
        2: lambda x, y: (w - 1 - x, y),  # top, right: mirrored
        3: lambda x, y: (w - 1 - x, h - 1 - y),  # bottom, right: upside down
        4: lambda x, y: (x, h - 1 - y),  # bottom, left: flipped
        5: lambda x, y: (y, x),  # left, top: transposed
        6: lambda x, y: (y, w - 1 - x),  # right, top: needs 90 degrees clockwise
        7: lambda x, y: (h - 1 - y, w - 1 - x),  # right, bottom: transverse
        8: lambda x, y: (h - 1 - y, x),  # left, bottom: needs 90 degrees anticlockwise
    }[orientation]
    stored = Image.new("RGB", (w, h) if orientation <= 4 else (h, w))
    for y in range(h):
        for x in range(w):
            stored.putpixel(where(x, y), upright.getpixel((x, y)))
    return stored


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_every_exif_orientation_comes_out_upright(tmp_path, orientation, fmt):
    upright = quadrants()
    stored = stored_for_orientation(upright, orientation)
    path = tmp_path / f"oriented_{orientation}.{fmt.lower()}"
    path.write_bytes(encode(stored, fmt, exif=exif_with_orientation(orientation)))

    result = load_image(path)
    assert result.image.size == upright.size == result.original_size
    for x, y in [(16, 10), (48, 10), (16, 30), (48, 30)]:
        assert near(result.image.getpixel((x, y)), upright.getpixel((x, y)), 20), (orientation, x, y)
    # The orientation is consumed: nothing downstream may rotate the picture again.
    assert result.image.getexif().get(0x0112) in (None, 1)


def test_rotated_large_jpeg_with_draft_reports_upright_original_size(tmp_path):
    stored = scene((1200, 800))
    path = tmp_path / "portrait.jpg"
    path.write_bytes(encode(stored, "JPEG", exif=exif_with_orientation(6)))
    result = load_image(path, min_side=100)
    assert result.original_size == (800, 1200)
    w, h = result.image.size
    assert h > w and min(w, h) >= 100 and w < 800


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_unreadable_exif_does_not_stop_decoding(tmp_path):
    path = tmp_path / "badexif.jpg"
    path.write_bytes(encode(scene(), "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + b"\x00" * 8))
    result = load_image(path)
    assert result.image.size == (320, 240)


# --- size reduction --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    path.write_bytes(encode(scene((4000, 3000)), "JPEG", quality=90))
    return path


def test_large_jpeg_is_drafted_to_at_least_min_side(big_jpeg, monkeypatch):
    from PIL import JpegImagePlugin

    drafts = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def recording_draft(self, mode, size):
        outcome = real_draft(self, mode, size)
        drafts.append((size, self.size))
        return outcome

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", recording_draft)
    before = snapshot(big_jpeg)
    result = load_image(big_jpeg, min_side=256)
    # libjpeg decoded at 1/8 scale (4000x3000 -> 500x375): the full picture was never in memory.
    assert drafts == [((256, 256), (500, 375))]
    assert result.image.size == (500, 375)
    assert result.original_size == (4000, 3000)
    assert min(result.image.size) >= 256
    assert result.image.size[0] <= 4000 // 4 and result.image.size[1] <= 3000 // 4
    assert result.scale >= 4
    assert result.warnings == []
    # Same picture, just smaller: the blue rectangle sits where it should.
    w, h = result.image.size
    assert near(result.image.getpixel((int(w * 0.7), int(h * 0.7))), BLUE, 20)
    assert near(result.image.getpixel((int(w * 0.3), int(h * 0.3))), RED, 20)
    assert snapshot(big_jpeg) == before


def test_without_min_side_the_full_picture_is_decoded(big_jpeg):
    result = load_image(big_jpeg)
    assert result.image.size == result.original_size == (4000, 3000)


def test_large_png_is_reduced_but_never_below_min_side(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(encode(scene((3000, 2000)), "PNG", compress_level=1))
    result = load_image(path, min_side=256)
    assert result.original_size == (3000, 2000)
    assert 256 <= min(result.image.size) < 2 * 256


def test_cmyk_jpeg_is_drafted_and_converted(tmp_path):
    path = tmp_path / "print.jpg"
    path.write_bytes(encode(Image.new("CMYK", (1600, 1200), (0, 255, 255, 0)), "JPEG"))
    result = load_image(path, min_side=100)
    assert result.original_size == (1600, 1200)
    assert 100 <= min(result.image.size) < 200
    cmyk_red(result)


def test_small_picture_is_never_enlarged(tmp_path):
    path = tmp_path / "small.png"
    path.write_bytes(encode(scene((200, 150)), "PNG"))
    result = load_image(path, min_side=256)
    assert result.image.size == result.original_size == (200, 150)


def test_pillow_bomb_warning_is_a_refusal_when_warnings_are_errors():
    import warnings

    data = png_claiming_size(10_000, 9_500)  # 95 MP: under our limit, over Pillow's warning level
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageLoadError) as caught:
            load_image_bytes(data)
    assert caught.value.kind == "too_large"


def test_min_side_must_be_positive():
    with pytest.raises(ValueError):
        load_image_bytes(encode(scene(), "PNG"), min_side=0)


# --- truncation without the global flag ------------------------------------------------------


def test_truncation_handling_never_touches_the_global_flag(monkeypatch):
    """Decode truncated and whole files from several threads; the process-wide flag stays as it was."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)  # Pillow's default, whatever ran before
    cut_jpeg = truncated(encode(scene(), "JPEG"))
    cut_png = truncated(encode(scene(), "PNG"))
    whole = encode(scene(), "PNG")
    outcomes: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work():
        for _ in range(5):
            for name, data in (("jpeg", cut_jpeg), ("png", cut_png), ("whole", whole)):
                try:
                    loaded = load_image_bytes(data, name=name)
                    outcome = "warned" if loaded.warnings else "clean"
                except ImageLoadError as exc:
                    outcome = exc.kind
                with lock:
                    outcomes.append((name, outcome))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert set(outcomes) == {("jpeg", "warned"), ("png", "truncated"), ("whole", "clean")}


def test_truncated_png_still_warns_if_someone_set_the_global_flag(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    loaded = load_image_bytes(encode(scene(), "PNG")[:-12], name="no_iend.png")  # all rows, no IEND
    assert any("incomplete" in w for w in loaded.warnings)
    loaded = load_image_bytes(truncated(encode(scene(), "JPEG")), name="cut.jpg")
    assert any("incomplete" in w for w in loaded.warnings)


# --- bytes, names, housekeeping --------------------------------------------------------------


def test_load_image_bytes_uses_the_name_in_messages():
    with pytest.raises(ImageLoadError) as caught:
        load_image_bytes(b"", name="clipboard picture")
    assert caught.value.kind == "empty_file"
    assert "clipboard picture" in str(caught.value)
    loaded = load_image_bytes(encode(scene(), "WEBP"), name="dropped.webp", min_side=64)
    assert loaded.format == "WEBP" and loaded.original_size == (320, 240)


def test_result_is_detached_and_carries_no_orientation(tmp_path):
    path = tmp_path / "rot.jpg"
    path.write_bytes(encode(scene(), "JPEG", exif=exif_with_orientation(8)))
    result = load_image(path)
    assert type(result.image) is Image.Image  # a plain image, not the plugin object reading the file
    assert "exif" not in result.image.info


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to count open files")
def test_no_file_stays_open(tmp_path):
    good = tmp_path / "ok.jpg"
    good.write_bytes(encode(scene(), "JPEG"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(truncated(encode(scene(), "PNG")))
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        load_image(good)
        with pytest.raises(ImageLoadError):
            load_image(bad)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.jpg", True), ("B.JPEG", True), ("c.Png", True), ("d.webp", True), ("e.HEIC", True), ("f.tif", True),
        ("g.jfif", True), ("h.txt", False), ("noext", False), ("archive.jpg.zip", False), ("._IMG_0001.JPG", False),
    ],
)
def test_is_image_path(name, expected):
    assert is_image_path(name) is expected
    assert is_image_path(Path("some folder") / name) is expected


def test_extension_set_covers_the_promised_formats():
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif"} <= IMAGE_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)
    assert (".avif" in IMAGE_EXTENSIONS) == bool(features.check("avif"))


def test_heic_without_pillow_heif_gets_a_clear_error(tmp_path):
    heic = heic_bytes()
    path = tmp_path / "phone.heic"
    path.write_bytes(heic)
    code = f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] == 'pillow_heif':
                    raise ImportError('blocked for this test')
        sys.meta_path.insert(0, Block())
        from snakeid_desktop.imageload import load_image
        from snakeid_desktop.errors import ImageLoadError
        try:
            load_image({str(path)!r})
        except ImageLoadError as exc:
            print(exc.kind)
            print(exc)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    lines = proc.stdout.splitlines()
    assert lines and lines[0] == "unsupported_format", proc.stdout + proc.stderr
    assert "pillow-heif" in lines[1]


# --- shapes that would make preprocessing allocate gigabytes ---------------------------------


def test_a_line_of_pixels_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "line.png"
    Image.new("RGB", (1, 100_000), RED).save(path)  # ~475 bytes; resized for the model: ~19 GB
    assert path.stat().st_size < 2000
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded pixels of a refused picture"))
    with pytest.raises(ImageLoadError) as caught:
        load_image(path, min_side=256)
    assert caught.value.kind == "bad_dimensions" and caught.value.kind in imageload.KINDS
    assert str(path) in str(caught.value) and "1x100000" in str(caught.value)


def test_elongated_picture_is_preprocessed_with_bounded_work(monkeypatch):
    from snakeid_desktop.preprocess import MAX_ASPECT_RATIO, Preprocessing, eval_transform

    loaded = load_image_bytes(encode(Image.new("RGB", (300, 30_000), GREEN), "PNG"), min_side=256)
    assert any("elongated" in w for w in loaded.warnings)
    sizes = []
    real_resize = Image.Image.resize

    def recording_resize(self, size, *args, **kwargs):
        sizes.append(size)
        return real_resize(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", recording_resize)
    prep = Preprocessing(224, 256)
    tensor = eval_transform(loaded.image, prep)
    assert tuple(tensor.shape) == (3, 224, 224)
    # Without the pre-crop this resize asked for 256 x 25600 (a 1x100000 line: 256 x 25.6 million).
    assert sizes and all(w * h <= 256 * 256 * MAX_ASPECT_RATIO + 256 for w, h in sizes), sizes
    assert near([round(v * 127.5 + 127.5) for v in tensor[:, 112, 112].tolist()], GREEN, 2)


@pytest.mark.parametrize("size", [(400, 300), (300, 900), (900, 300)], ids=["4:3", "1:3", "3:1"])
def test_pre_crop_changes_nothing_up_to_the_ratio(size):
    from snakeid_desktop.preprocess import Preprocessing, center_crop, eval_transform, resize_shorter_side, to_normalized_tensor

    prep = Preprocessing(224, 256)
    image = scene(size)
    before = to_normalized_tensor(center_crop(resize_shorter_side(image, 256), 224), prep)
    assert bool((eval_transform(image, prep) == before).all())


def test_pre_crop_keeps_the_centre_of_a_wide_panorama():
    from snakeid_desktop.preprocess import Preprocessing, center_crop, eval_transform, resize_shorter_side, to_normalized_tensor

    prep = Preprocessing(224, 256)
    image = scene((2000, 300))  # 6.7:1, cropped to 3:1 first
    uncropped = to_normalized_tensor(center_crop(resize_shorter_side(image, 256), 224), prep)
    assert float((eval_transform(image, prep) - uncropped).abs().mean()) < 0.01


# --- the process-wide decode budget ----------------------------------------------------------


def _run_reservations(budget, sizes, hold=0.05):
    """Reserve each size from its own thread; -> the most reservations that were active at once."""
    import time

    active, most = [0], [0]
    lock = threading.Lock()

    def work(n):
        with budget.reserve(n):
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
            time.sleep(hold)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=work, args=(n,)) for n in sizes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a reservation never got its turn"
    return most[0]


def test_budget_runs_what_fits_side_by_side_and_no_more():
    budget = imageload.DecodeBudget(100)
    assert _run_reservations(budget, [30] * 6) == 3
    assert budget.peak <= 100 and budget.in_use == 0 and budget.active == 0


def test_reservation_larger_than_the_budget_runs_alone():
    budget = imageload.DecodeBudget(100)
    assert _run_reservations(budget, [10, 500, 10, 500, 10]) in (1, 2)  # small ones may pair up
    assert _run_reservations(imageload.DecodeBudget(100), [500] * 4) == 1
    assert budget.in_use == 0


def test_loader_waits_for_the_budget(monkeypatch):
    # A budget of one byte: every decode is "larger than the budget", so they run one at a time.
    budget = imageload.DecodeBudget(1)
    monkeypatch.setattr(imageload, "_budget", budget)
    reserved = []
    real_reserve = budget.reserve

    def recording_reserve(n):
        reserved.append(n)
        return real_reserve(n)

    monkeypatch.setattr(budget, "reserve", recording_reserve)
    data = encode(Image.merge("LA", [Image.linear_gradient("L").resize((800, 600))] * 2), "PNG")
    results = []
    threads = [threading.Thread(target=lambda: results.append(load_image_bytes(data, min_side=64))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and budget.peak == max(reserved) and budget.in_use == 0
    # The estimate covers the decoded LA picture (4 bytes/pixel in Pillow) and the file's bytes.
    assert min(reserved) >= 800 * 600 * 4 + len(data)


def test_default_budget_is_sane():
    assert 256 * 2**20 <= imageload.DECODE_BUDGET_BYTES <= 1536 * 2**20
    assert imageload._budget.limit == imageload.DECODE_BUDGET_BYTES


@pytest.mark.parametrize("min_side", [None, 64])
@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "F", "I;16", "CMYK", "L"])
def test_conversion_by_strips_matches_whole_picture(monkeypatch, mode, min_side):
    base = scene((397, 261))
    image = base.convert("I").point(lambda v: v * 200).convert("I;16") if mode == "I;16" else base.convert(mode)
    data = encode(image, "TIFF")
    whole = load_image_bytes(data, min_side=min_side).image
    monkeypatch.setattr(imageload, "STRIP_PIXELS", 397 * 7)  # 7 rows a strip, not a multiple of the factor
    strips = load_image_bytes(data, min_side=min_side).image
    assert strips.size == whole.size and strips.tobytes() == whole.tobytes()


# --- colour profiles ---------------------------------------------------------------------------


def srgb_encode(linear: float) -> int:
    """The sRGB transfer function (IEC 61966-2-1), independent of littlecms."""
    v = 12.92 * linear if linear <= 0.0031308 else 1.055 * linear ** (1 / 2.4) - 0.055
    return round(v * 255)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_embedded_profile_is_converted_to_srgb(fmt):
    from tests.icc_profiles import SRGB_COLORANTS, rgb_profile

    # sRGB primaries with linear-light curves: grey v must come out as srgb_encode(v / 255).
    linear = rgb_profile("linear-light test profile", SRGB_COLORANTS, gamma=None)
    image = Image.new("RGB", (96, 64))
    for i, v in enumerate((32, 64, 160)):
        image.paste((v, v, v), (32 * i, 0, 32 * i + 32, 64))
    loaded = load_image_bytes(encode(image, fmt, icc_profile=linear))
    assert not_about_size(loaded.warnings) == []
    for i, v in enumerate((32, 64, 160)):
        expected = srgb_encode(v / 255)
        assert near(loaded.image.getpixel((32 * i + 16, 32)), (expected,) * 3, 2), (v, expected)
    assert "icc_profile" not in loaded.image.info  # the pixels are sRGB now


@pytest.mark.parametrize("min_side", [None, 16])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_wide_gamut_photo_matches_a_reference_conversion(fmt, min_side):
    from PIL import ImageCms

    from tests.icc_profiles import DISPLAY_P3_COLORANTS, rgb_profile

    p3 = rgb_profile("Display P3 (test)", DISPLAY_P3_COLORANTS, gamma=2.2)
    image = Image.new("RGB", (64, 64), (150, 90, 60))
    image.paste((40, 200, 60), (0, 32, 64, 64))
    untagged = load_image_bytes(encode(image, fmt, quality=95), min_side=min_side).image
    tagged = load_image_bytes(encode(image, fmt, quality=95, icc_profile=p3), min_side=min_side).image
    reference = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(p3)), ImageCms.createProfile("sRGB"))
    for y in (8, 48):
        x, sy = 8 * untagged.size[0] // 64, y * untagged.size[1] // 64
        assert near(tagged.getpixel((x, sy)), reference.getpixel((8, y)), 3), (tagged.getpixel((x, sy)), reference.getpixel((8, y)))
        assert max(abs(a - b) for a, b in zip(tagged.getpixel((x, sy)), untagged.getpixel((x, sy)))) > 10


def test_cmyk_profile_is_used_for_cmyk_pictures():
    from PIL import ImageCms

    # No CMYK profile ships with Pillow; a profile of the wrong colour space must not be applied.
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    loaded = load_image_bytes(encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", icc_profile=srgb))
    cmyk_red(loaded)
    assert any("does not match" in w for w in loaded.warnings), loaded.warnings


@pytest.mark.parametrize("profile", [b"not a profile" * 10, b"\0" * 200], ids=["garbage", "zeros"])
def test_broken_profile_keeps_the_pixels_and_warns(profile):
    image = Image.new("RGB", (64, 48), (40, 200, 60))
    loaded = load_image_bytes(encode(image, "PNG", icc_profile=profile), name="odd.png")
    assert loaded.image.getpixel((10, 10)) == (40, 200, 60)
    assert any("colour profile" in w and "odd.png" in w for w in loaded.warnings), loaded.warnings


def test_pyinstaller_spec_keeps_colour_management():
    spec = (REPO_ROOT / "pyinstaller.spec").read_text()
    excludes = spec[spec.index("EXCLUDES = [") : spec.index("]", spec.index("EXCLUDES = ["))]
    assert "ImageCms" not in excludes and "_imagingcms" not in excludes


# --- zeroed scan data ------------------------------------------------------------------------


def zero_scan(data: bytes, start_fraction: float, end_fraction: float = 1.0) -> bytes:
    """A JPEG whose entropy-coded data is zeroed between two fractions of it (the end marker kept)."""
    out = bytearray(data)
    sos = out.find(b"\xff\xda")
    first = sos + 2 + int.from_bytes(out[sos + 2 : sos + 4], "big")
    last = len(out) - 2
    a, b = first + int((last - first) * start_fraction), first + int((last - first) * end_fraction)
    out[a:b] = bytes(b - a)
    return bytes(out)


@pytest.mark.parametrize("min_side", [None, 64])
@pytest.mark.parametrize(
    "start, end, says", [(0.0, 1.0, "flat grey picture"), (0.5, 1.0, "bottom"), (0.3, 0.6, "bottom")],
    ids=["all", "tail", "middle"],
)
def test_zeroed_jpeg_data_is_reported(start, end, says, min_side):
    photo = encode(scene((800, 600)), "JPEG", quality=90)
    loaded = load_image_bytes(zero_scan(photo, start, end), name="card.jpg", min_side=min_side)
    assert any(says in w and "card.jpg" in w for w in loaded.warnings), loaded.warnings
    assert load_image_bytes(photo, min_side=min_side).warnings == []


def test_grey_photo_content_is_not_an_alarm():
    # A grey wall or fog still has light falling off across it (here 118..138) and sensor noise;
    # only a picture flat to +-2 levels over whole rows (which no camera makes) is reported.
    light = Image.linear_gradient("L").rotate(90).resize((800, 600)).point(lambda v: 118 + v * 20 // 255)
    wall = Image.blend(light.convert("RGB"), Image.effect_noise((800, 600), 40).convert("RGB"), 0.1)
    for min_side in (None, 64):
        assert load_image_bytes(encode(wall, "JPEG"), min_side=min_side).warnings == []


# --- smaller format cases --------------------------------------------------------------------


def test_png_with_large_metadata_decodes():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    xmp = "".join(f"<rdf:li>{(i * 7919) % 100003:x}</rdf:li>" for i in range(120_000))  # ~2.5 MB
    info.add_text("XML:com.adobe.xmp", xmp, zip=True)
    data = encode(scene(), "PNG", pnginfo=info)
    loaded = load_image_bytes(data, name="edited.png")
    assert loaded.original_size == (320, 240) and loaded.warnings == []


def test_truncated_avif_is_incomplete():
    data = avif_bytes()
    with pytest.raises(ImageLoadError) as caught:
        load_image_bytes(truncated(data, 0.6), name="cut.avif")
    assert caught.value.kind == "truncated", str(caught.value)


def test_truncated_heic_is_incomplete():
    data = heic_bytes()
    with pytest.raises(ImageLoadError) as caught:
        load_image_bytes(truncated(data, 0.6), name="cut.heic")
    assert caught.value.kind == "truncated", str(caught.value)


def mpo_with_secondary(mp_type: int | None) -> bytes:
    """A primary JPEG plus a second image in an MPF index (how Ultra HDR stores its gain map)."""
    primary, secondary = scene(), Image.linear_gradient("L").resize((160, 120)).convert("RGB")
    data = bytearray(encode(primary, "MPO", save_all=True, append_images=[secondary]))
    if mp_type is not None:  # Pillow writes type 0 (Undefined) for the second entry: change it
        mpf = data.find(b"MPF\0")
        entries = data.find(struct.pack("<HHI", 0xB002, 7, 32), mpf)  # little-endian MP Entry tag
        assert entries > 0
        value = int.from_bytes(data[entries + 8 : entries + 12], "little")
        second = mpf + 4 + value + 16
        flags = int.from_bytes(data[second : second + 4], "little") & 0xFF000000
        data[second : second + 4] = (flags | mp_type).to_bytes(4, "little")
    return bytes(data)


def test_gain_map_mpo_does_not_warn_about_frames():
    loaded = load_image_bytes(mpo_with_secondary(None), name="ultrahdr.jpg")
    assert loaded.format == "MPO" and loaded.original_size == (320, 240)
    assert loaded.warnings == []


def test_stereo_mpo_still_warns_about_frames():
    loaded = load_image_bytes(mpo_with_secondary(0x020002), name="stereo.mpo")  # Multi-Frame: Disparity
    assert any("2 frames" in w for w in loaded.warnings), loaded.warnings


def test_pillow_warnings_land_in_the_result_not_on_stderr(tmp_path):
    """In a plain process (pytest replaces warnings.showwarning for each test, so not here)."""
    path = tmp_path / "badexif.jpg"
    path.write_bytes(encode(scene(), "JPEG", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x0f\x01\x02\x00\xff\x00\x00\x00\x40\x00\x00\x00"))
    code = f"""
        import threading
        from snakeid_desktop.imageload import load_image
        results = []
        threads = [threading.Thread(target=lambda: results.append(load_image({str(path)!r}))) for _ in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()
        for r in results: print(r.warnings)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and all("damaged EXIF" in line for line in lines), proc.stdout
    assert "EXIF" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
