"""Pillow set up the same way in every service that opens images."""

from __future__ import annotations

from PIL import Image


def use_pixel_limit(max_pixels: int) -> None:
    """Pillow's own decompression-bomb guard at MAX_IMAGE_PIXELS. Its default (~89 MP, and a
    refusal of its own at twice that) would otherwise refuse an image within a higher limit
    with another message; our checks refuse anything above the limit, naming it."""
    Image.MAX_IMAGE_PIXELS = max_pixels
