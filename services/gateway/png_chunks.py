"""A PNG's chunks before its image data, walked before Pillow reads them.

Opening a PNG, Pillow inflates each `iCCP` chunk it meets before the first `IDAT` (up to
1 MiB each, with no bound on how many), so a 1 MiB upload of a thousand tiny `iCCP` chunks
of compressed zeros cost 2.3 s of the gateway's CPU on its event loop. The PNG standard allows
one `iCCP` chunk; text chunks (`zTXt`, `iTXt`) may repeat, and a real image has a few.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNKS = 1024  # before the image data: far above any real PNG's
MAX_COMPRESSED_TEXT = 16  # zTXt and iTXt chunks read before the image data
_HEADER = struct.Struct(">I4s")


def png_refusal(file: BinaryIO) -> str | None:
    """Why the PNG in `file` is not read (None: nothing against it here); reads chunk headers
    only, from the start, and leaves the file where it found it."""
    start = file.tell()
    try:
        return _walk(file)
    finally:
        file.seek(start)


def _walk(file: BinaryIO) -> str | None:
    if file.read(len(SIGNATURE)) != SIGNATURE:
        return None  # not ours to judge: Pillow says what it is not
    iccp = text = 0
    for _ in range(MAX_CHUNKS):
        header = file.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return None  # truncated: Pillow's refusal names it
        length, kind = _HEADER.unpack(header)
        if kind in (b"IDAT", b"IEND"):
            return None
        if kind == b"iCCP":
            iccp += 1
            if iccp > 1:
                return "more than one iCCP chunk (the PNG standard allows one)"
        elif kind in (b"zTXt", b"iTXt"):
            text += 1
            if text > MAX_COMPRESSED_TEXT:
                return f"more than {MAX_COMPRESSED_TEXT} compressed text chunks before its pixels"
        file.seek(length + 4, 1)  # the data and its CRC
    return f"more than {MAX_CHUNKS} chunks before its pixels"
