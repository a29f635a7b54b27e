"""Write the binary part of the hostile-input corpus (`tests/security/corpus/images/`).

The files are committed; this script is how they were made, so a case can be re-made or
changed on purpose. Bombs are crafted headers (a few hundred bytes declaring billions of
pixels), never big files. Run: `.venv/bin/python -m tests.security.make_corpus`.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

IMAGES = Path(__file__).parent / "corpus" / "images"
# The suite runs with MAX_IMAGE_PIXELS = 1000 x 1000 (see conftest.LIMITS).
LIMIT_SIDE = 1000


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int, colour_type: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)


def png_bomb(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB pixels and holds one compressed row of them."""
    row = zlib.compress(b"\x00" + b"\x00" * 3 * min(width, 64))
    return png_header(width, height) + png_chunk(b"IDAT", row) + png_chunk(b"IEND", b"")


def png_text_bomb() -> bytes:
    """A 1x1 PNG whose zTXt chunk inflates to 16 MB: a bomb in the metadata, not the pixels."""
    text = b"Comment\x00\x00" + zlib.compress(b"\x00" * 16 * 1024 * 1024, 9)
    pixels = zlib.compress(b"\x00\x00\x00\x00")
    return (
        png_header(1, 1)
        + png_chunk(b"zTXt", text)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


def gif(screen: tuple[int, int], frame: tuple[int, int, int, int]) -> bytes:
    """A GIF with a 2-colour palette; `frame` is (left, top, width, height) of its one image."""
    header = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    left, top, width, height = frame
    descriptor = b"," + struct.pack("<HHHHB", left, top, width, height, 0)
    data = b"\x02\x02\x44\x01\x00"  # LZW min code size 2, one tiny sub-block, terminator
    return header + descriptor + data + b";"


def encoded(im: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt)
    return buffer.getvalue()


def noise(size: tuple[int, int]) -> Image.Image:
    """Content that does not compress away, so a cut file is missing real pixel data."""
    return Image.merge("RGB", [Image.effect_noise(size, 64)] * 3)


def fits() -> bytes:
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    2",
        "NAXIS1  =                    4",
        "NAXIS2  =                    4",
        "END",
    ]
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode()
    return header + b"\x80" * 16 + b"\x00" * (2880 - 16)


EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 10 10
%%EndComments
% Ghostscript would run this: it must never be handed to gs.
(/etc/passwd) (r) file 100 string readstring pop print
showpage
%%EOF
"""

POSTSCRIPT = b"""%!PS-Adobe-3.0
%%Pages: 1
%%EndComments
/Helvetica findfont 12 scalefont setfont 72 720 moveto (renamed PostScript) show
(%pipe%id) (w) file closefile
showpage
%%EOF
"""

PDF = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >> endobj
2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj
3 0 obj << /S /JavaScript /JS (app.alert('renamed PDF')) >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""

SVG = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     width="10" height="10">
  <image xlink:href="file:///etc/passwd" width="10" height="10"/>
  <text>&xxe;</text>
  <script>alert(1)</script>
</svg>
"""


def dos_eps() -> bytes:
    """An EPS with the binary DOS header (C5 D0 D3 C6) Pillow also recognises."""
    offset = 30
    header = struct.pack("<IIIIIIIH", 0xC6D3D0C5, offset, len(EPS), 0, 0, 0, 0, 0xFFFF)
    return header + EPS


def files() -> dict[str, bytes]:
    png = encoded(noise((64, 64)), "PNG")
    jpeg = encoded(noise((64, 64)), "JPEG")
    gif_full = encoded(noise((64, 64)).convert("P"), "GIF")
    return {
        # decompression bombs: sizes from crafted headers
        "bomb-png-65535x65535.png": png_bomb(65535, 65535),
        "bomb-gif-65535x65535.gif": gif((65535, 65535), (0, 0, 1, 1)),
        "bomb-gif-frame-beyond-screen.gif": gif((1, 1), (65000, 65000, 1, 1)),
        "bomb-png-ztxt-16mb.png": png_text_bomb(),
        # a real, decodable picture one column over the limit (and its control at the limit)
        "over-limit-1001x1000.png": encoded(Image.new("RGB", (LIMIT_SIDE + 1, LIMIT_SIDE)), "PNG"),
        "at-limit-1000x1000.png": encoded(Image.new("RGB", (LIMIT_SIDE, LIMIT_SIDE)), "PNG"),
        # other formats under an image name
        "eps-renamed.png": EPS,
        "eps-dos-header-renamed.jpg": dos_eps(),
        "postscript-renamed.jpg": POSTSCRIPT,
        "pdf-renamed.png": PDF,
        "tiff-renamed.jpg": encoded(Image.new("RGB", (4, 4)), "TIFF"),
        "fits-renamed.png": fits(),
        "svg-renamed.png": SVG,
        "png-signature-then-eps.png": b"\x89PNG\r\n\x1a\n" + EPS,
        # truncated and empty
        "truncated.png": png[: len(png) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.gif": gif_full[: len(gif_full) // 2],
        "header-only.png": png_header(64, 64),
        "zero-byte.png": b"",
    }


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name, data in files().items():
        (IMAGES / name).write_bytes(data)
        print(f"{len(data):8d}  {name}")


if __name__ == "__main__":
    main()
