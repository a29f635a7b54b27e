"""Real test images, made with Pillow in memory: no binary fixtures in the repository."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Sequence
from typing import Any

from PIL import ExifTags, Image, ImageCms, ImageDraw, ImageFont

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


def detailed_photo(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Photo-like detail at every scale: smooth gradients, blotches of several sizes, fine
    grain, and text, lines and shapes with hard edges. A resampler that throws detail away
    shows in a PSNR against a careful reference; plain gradients under noise would not."""
    rng = random.Random(seed)
    width, height = size
    small = (max(1, width // 4), max(1, height // 4))  # soft content: made small, blown up
    gradient = Image.linear_gradient("L").resize(small)
    base = Image.merge(
        "RGB", (gradient, Image.radial_gradient("L").resize(small), gradient.rotate(180))
    )
    for scale in (16, 4, 1):  # noise made smaller still and blown up: blotches of that size
        tiny = (max(1, small[0] // scale), max(1, small[1] // scale))
        noise = Image.effect_noise(tiny, 64).resize(small, Image.Resampling.BICUBIC)
        bands = (
            noise,
            noise.transpose(Image.Transpose.ROTATE_180),
            noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        )
        base = Image.blend(base, Image.merge("RGB", bands), 0.3)
    base = base.resize(size, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(base)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(10, width // 4), rng.randrange(10, height // 4)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x, y, x + w, y + h), outline=colour, width=rng.randrange(1, 6))
        else:
            draw.line((x, y, x + w, y + h), fill=colour, width=rng.randrange(1, 4))
    for _ in range(80):
        font = ImageFont.load_default(rng.randrange(8, 48))
        colour = tuple(rng.randrange(256) for _ in range(3))
        xy = (rng.randrange(width), rng.randrange(height))
        draw.text(xy, "Quality comes with speed 0123456789", fill=colour, font=font)
    grain = Image.frombytes("RGB", size, rng.randbytes(3 * width * height))  # fast, uniform
    return Image.blend(base, grain, 0.12)


def stored_png(im: Image.Image) -> bytes:
    """An RGB image as a PNG with no filtering and no compression, which Pillow (filtering
    every row) writes ten times slower: big test inputs are quick to make."""
    assert im.mode == "RGB"
    width, height = im.size
    raw, stride = im.tobytes(), 3 * width
    rows = b"".join(b"\0" + raw[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )
