"""Draw a publishable sample picture of a snake (our own drawing, no photo involved).

    python scripts/make_sample_photo.py [OUT.jpg]

Used by scripts/screenshot.py for the README screenshot. Deterministic: same picture every run.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 1200, 900


def _background(rng: random.Random) -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(image)
    for y in range(HEIGHT):  # warm sandy ground, lighter towards the top
        t = y / HEIGHT
        draw.line([(0, y), (WIDTH, y)], fill=(int(205 - 50 * t), int(180 - 50 * t), int(130 - 45 * t)))
    for _ in range(900):  # gravel
        x, y = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        r = rng.uniform(1.5, 7)
        shade = rng.randint(95, 175)
        draw.ellipse([x - r, y - r * 0.7, x + r, y + r * 0.7], fill=(shade, int(shade * 0.9), int(shade * 0.75)))
    for _ in range(40):  # dry grass blades
        x = rng.uniform(0, WIDTH)
        y = rng.uniform(HEIGHT * 0.55, HEIGHT)
        length = rng.uniform(40, 120)
        lean = rng.uniform(-25, 25)
        draw.line([(x, y), (x + lean, y - length)], fill=(150, 140, 70), width=3)
    return image.filter(ImageFilter.GaussianBlur(1.2))


def _spine(n: int = 400) -> list[tuple[float, float, float]]:
    """(x, y, radius) along an S-shaped body, thick in the middle, tapering to the tail."""
    points = []
    for i in range(n):
        t = i / (n - 1)
        x = 150 + 880 * t
        y = HEIGHT * 0.55 + 170 * math.sin(t * 2.6 * math.pi + 0.4) * (0.45 + 0.55 * t)
        radius = 46 * (0.3 + 0.7 * math.sin(min(1.0, t * 1.05) * math.pi * 0.8 + 0.2))
        points.append((x, y, max(8.0, radius)))
    return points


def draw_sample_snake(path: Path | str) -> Path:
    rng = random.Random(7)
    image = _background(rng)
    shadow = Image.new("L", image.size, 0)
    shadow_draw = ImageDraw.Draw(shadow)
    spine = _spine()
    for x, y, r in spine:
        shadow_draw.ellipse([x - r + 14, y - r + 22, x + r + 14, y + r + 22], fill=120)
    image.paste((40, 32, 20), mask=shadow.filter(ImageFilter.GaussianBlur(14)))

    draw = ImageDraw.Draw(image)
    for i, (x, y, r) in enumerate(spine):  # body: olive-brown with dark chevron bands
        band = (i // 18) % 2 == 0
        colour = (92, 74, 40) if band else (168, 140, 78)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    for x, y, r in spine[::6]:  # belly-side highlight gives it volume
        draw.ellipse([x - r * 0.35, y - r * 0.75, x + r * 0.15, y - r * 0.45], fill=(200, 178, 112))

    hx, hy, _ = spine[-1]  # head at the thick end
    head_w, head_h = 120, 86
    draw.ellipse([hx - 30, hy - head_h / 2, hx - 30 + head_w, hy + head_h / 2], fill=(110, 88, 48))
    for ey in (hy - 22, hy + 18):
        draw.ellipse([hx + 45, ey - 9, hx + 63, ey + 9], fill=(230, 200, 60))
        draw.ellipse([hx + 53, ey - 8, hx + 57, ey + 8], fill=(15, 10, 5))
    tongue_x = hx - 30 + head_w
    draw.line([(tongue_x - 4, hy), (tongue_x + 40, hy + 4)], fill=(170, 20, 30), width=5)
    draw.line([(tongue_x + 40, hy + 4), (tongue_x + 58, hy - 8)], fill=(170, 20, 30), width=4)
    draw.line([(tongue_x + 40, hy + 4), (tongue_x + 58, hy + 16)], fill=(170, 20, 30), width=4)

    image = image.filter(ImageFilter.SMOOTH)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=92)
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("sample-snake.jpg")
    print(draw_sample_snake(out))
