"""Draw the app icon (a coiled snake on a green badge) and write resources/app-icon.{png,ico,icns}.

Drawn at 1024 px and scaled down so every size is anti-aliased. Rerun after changing the drawing:
    python scripts/make_app_icon.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from PIL import Image, ImageDraw

CANVAS = 1024
RESOURCES = Path(__file__).resolve().parent.parent / "resources"
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def _badge(draw: ImageDraw.ImageDraw) -> None:
    margin = 48
    box = (margin, margin, CANVAS - margin, CANVAS - margin)
    draw.rounded_rectangle(box, radius=200, fill=(38, 104, 64), outline=(22, 66, 40), width=28)


def _snake_path() -> list[tuple[float, float]]:
    """An S-shaped body: a sine wave whose amplitude tapers towards the tail."""
    points = []
    steps = 240
    for i in range(steps + 1):
        t = i / steps
        y = 250 + t * 560
        amplitude = 250 * (1 - 0.55 * t)
        x = CANVAS / 2 + amplitude * math.sin(t * 2.6 * math.pi + 0.35)
        points.append((x, y))
    return points


def draw_icon() -> Image.Image:
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    _badge(draw)
    body = _snake_path()
    steps = len(body) - 1
    # Body as overlapping discs so the width tapers smoothly from head to tail.
    for outline_pass, colour in ((True, (28, 30, 24)), (False, (232, 196, 64))):
        for i, (x, y) in enumerate(body):
            radius = 74 - 52 * (i / steps) + (14 if outline_pass else 0)
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    # Dark bands along the body.
    for i in range(12, steps - 6, 22):
        x, y = body[i]
        radius = (74 - 52 * (i / steps)) * 0.72
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(120, 70, 30))
    # Head: a wider oval at the top end, with an eye.
    hx, hy = body[0]
    draw.ellipse((hx - 120, hy - 104, hx + 120, hy + 88), fill=(28, 30, 24))
    draw.ellipse((hx - 104, hy - 90, hx + 104, hy + 74), fill=(232, 196, 64))
    draw.ellipse((hx + 10, hy - 50, hx + 62, hy + 2), fill=(20, 20, 20))
    draw.ellipse((hx + 26, hy - 42, hx + 40, hy - 28), fill=(255, 255, 255))
    # Forked tongue, in front of the eye.
    draw.line([(hx + 100, hy - 10), (hx + 220, hy - 40)], fill=(210, 40, 40), width=22)
    draw.line([(hx + 218, hy - 40), (hx + 265, hy - 90)], fill=(210, 40, 40), width=20)
    draw.line([(hx + 218, hy - 40), (hx + 280, hy - 25)], fill=(210, 40, 40), width=20)
    return image


def main() -> int:
    RESOURCES.mkdir(exist_ok=True)
    icon = draw_icon()
    icon.resize((256, 256), Image.LANCZOS).save(RESOURCES / "app-icon.png", optimize=True)
    icon.resize((256, 256), Image.LANCZOS).save(RESOURCES / "app-icon.ico", sizes=ICO_SIZES)
    icon.resize((512, 512), Image.LANCZOS).save(RESOURCES / "app-icon.icns")
    for name in ("app-icon.png", "app-icon.ico", "app-icon.icns"):
        print(RESOURCES / name, (RESOURCES / name).stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
