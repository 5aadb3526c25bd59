"""Draws the European Union emblem: twelve gold stars on reflex blue, as PNG."""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

BLUE = (0x00, 0x33, 0x99)
GOLD = (0xFF, 0xCC, 0x00)
SCALE = 4  # supersampling factor for anti-aliasing
# Inner/outer radius ratio of a regular five-pointed star (pentagram).
INNER_RATIO = math.sin(math.radians(18)) / math.sin(math.radians(54))


def _star(cx: float, cy: float, outer: float) -> list[tuple[float, float]]:
    """Vertices of an upright five-pointed star centred at (cx, cy)."""
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else outer * INNER_RATIO
        angle = math.radians(-90 + 36 * i)
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def emblem_png(height: int = 100) -> bytes:
    """Return PNG bytes of the EU emblem, `height` pixels high and 3:2 wide."""
    if height < 1:
        raise ValueError(f"height must be positive, got {height}")
    width = round(height * 3 / 2)
    w, h = width * SCALE, height * SCALE
    image = Image.new("RGB", (w, h), BLUE)
    draw = ImageDraw.Draw(image)
    for hour in range(12):
        angle = math.radians(-90 + 30 * hour)  # hour 0 is 12 o'clock
        cx = w / 2 + h / 3 * math.cos(angle)
        cy = h / 2 + h / 3 * math.sin(angle)
        draw.polygon(_star(cx, cy, h / 18), fill=GOLD)
    image = image.resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> None:
    """Write the emblem to a PNG file given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="output PNG path")
    parser.add_argument("--height", type=int, default=100, help="height in pixels")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(emblem_png(args.height))


if __name__ == "__main__":
    main()
