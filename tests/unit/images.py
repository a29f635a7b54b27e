"""Real test images, made with Pillow in memory: no binary fixtures in the repository."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from typing import Any

from PIL import ExifTags, Image, ImageCms

Colour = tuple[int, ...] | str


def encode(im: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def solid(size: tuple[int, int], colour: Colour = "red", mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def photo(size: tuple[int, int]) -> Image.Image:
    """Photographic-ish content (gradients under noise): JPEG cannot squeeze it to nothing."""
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    noise = Image.effect_noise(size, 48)
    blue = Image.blend(red, noise, 0.5)
    return Image.merge("RGB", (Image.blend(red, noise, 0.25), green, blue))


def stripes(size: tuple[int, int], colours: Sequence[Colour], mode: str = "RGB") -> Image.Image:
    """Vertical stripes of equal width, left to right."""
    im = Image.new(mode, size)
    width = size[0] // len(colours)
    for i, colour in enumerate(colours):
        right = size[0] if i == len(colours) - 1 else (i + 1) * width
        im.paste(colour, (i * width, 0, right, size[1]))
    return im


def checkerboard(size: tuple[int, int]) -> Image.Image:
    """1-pixel black/white squares as a palette image: a fair resample averages them to grey."""
    im = Image.new("L", size)
    im.putdata([255 * ((x + y) % 2) for y in range(size[1]) for x in range(size[0])])
    return im.convert("P")


def exif_bytes(orientation: int | None = None, make: str | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if make is not None:
        exif[ExifTags.Base.Make] = make
    return exif.tobytes()


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def padded_icc(icc: bytes, size: int) -> bytes:
    """`icc` grown to `size` bytes (its header's length field too): LittleCMS still reads it."""
    grown = bytearray(icc) + bytes(size - len(icc))
    grown[0:4] = struct.pack(">I", size)
    return bytes(grown)


def red_green_swapped_icc() -> bytes:
    """sRGB with the red and green primaries swapped: a pure red pixel in this space is
    sRGB green, so a conversion to sRGB shows."""
    icc = bytearray(srgb_icc())
    count = struct.unpack(">I", icc[128:132])[0]
    tags = {bytes(icc[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    r, g = tags[b"rXYZ"], tags[b"gXYZ"]
    icc[r + 4 : r + 12], icc[g + 4 : g + 12] = icc[g + 4 : g + 12], icc[r + 4 : r + 12]
    return bytes(icc)


def junk_rgb_icc(size: int) -> bytes:
    """Bytes that claim the RGB colour space at offset 16 and are no profile at all."""
    return bytes(16) + b"RGB " + bytes(size - 20)


def xmp_packet(text: str) -> bytes:
    return (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="'
        + text.encode()
        + b'"/></rdf:RDF></x:xmpmeta>'
    )


def animated(fmt: str, colours: Sequence[Colour], size: tuple[int, int] = (60, 40)) -> bytes:
    frames = [solid(size, colour) for colour in colours]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def mpo(size: tuple[int, int] = (120, 80)) -> bytes:
    """A JPEG carrying a second picture, as many phone cameras write them."""
    return encode(solid(size, "red"), "MPO", save_all=True, append_images=[solid(size, "blue")])


def sixteen_bit_grey_png(size: tuple[int, int], value: int) -> bytes:
    im = Image.new("I;16", size)
    im.putdata([value] * (size[0] * size[1]))
    return encode(im, "PNG")


def png_claiming_size(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose header claims another size (CRC fixed, so the header parses)."""
    data = bytearray(encode(solid((1, 1)), "PNG"))
    # signature (8), IHDR length (4), "IHDR" (4), then width and height
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)
