"""The embedded fonts (DejaVu Sans, shipped in ./fonts with its licence) and what they cover.

Registered once per process. Text with characters the fonts have no glyph for (CJK, for
one) would print as empty boxes; it is rejected up front with the field and the characters
named, which beats a PDF that silently shows the wrong thing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from services.renderer.text import clean
from shared.errors import PermanentJobError

FONT_DIR = Path(__file__).resolve().parent / "fonts"
REGULAR = "DejaVuSans"
BOLD = "DejaVuSans-Bold"
_FILES = {REGULAR: "DejaVuSans.ttf", BOLD: "DejaVuSans-Bold.ttf"}
_SHOWN = 5  # characters named in an error message


@cache
def register_fonts() -> frozenset[int]:
    """Register the fonts with reportlab; return the code points both of them can show."""
    covered: frozenset[int] | None = None
    for name, file in _FILES.items():
        font = TTFont(name, str(FONT_DIR / file))
        pdfmetrics.registerFont(font)
        chars = frozenset(font.face.charToGlyph)
        covered = chars if covered is None else covered & chars
    # <b> in our own markup (never in user text) maps to the bold face; no italic is shipped.
    pdfmetrics.registerFontFamily(
        REGULAR, normal=REGULAR, bold=BOLD, italic=REGULAR, boldItalic=BOLD
    )
    assert covered is not None
    return covered


def uncovered(text: str) -> list[str]:
    """The distinct characters of `text` the fonts cannot show, in order of appearance."""
    covered = register_fonts()
    if text.isascii() and _covers_printable_ascii(covered):
        return []  # what `clean` keeps of ASCII is printable (or a line break): all shown
    shown = clean(text)
    # The distinct characters first (a set is built in C): a 10-page document has tens of
    # them among tens of thousands, and almost always none is missing.
    missing = {c for c in set(shown) if c != "\n" and ord(c) not in covered}
    if not missing:
        return []
    return [c for c in dict.fromkeys(shown) if c in missing]


def check_coverage(value: Any, where: str) -> None:
    """Raise PermanentJobError naming the first string field under `value` that holds
    characters the fonts cannot show."""
    # All the text at once first, without the fields' paths (hundreds of short strings in a
    # long document, each checked on its own costs a millisecond or so): a line break between
    # them keeps NFC from joining two strings' characters, and almost always none is
    # missing. Only then, field by field, paths named.
    if not uncovered("\n".join(_texts(value))):
        return
    for path, text in _strings(value, where):
        missing = uncovered(text)
        if missing:
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:_SHOWN])
            more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
            raise PermanentJobError(
                f"{path}: the embedded font (DejaVu Sans: Latin, Greek, Cyrillic and more, "
                f"no CJK) cannot show {shown}{more}",
                kind="unsupported_text",
            )


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, Sequence):
        for item in value:
            yield from _texts(item)


@cache
def _covers_printable_ascii(covered: frozenset[int]) -> bool:
    return all(code in covered for code in range(0x20, 0x7F))


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, Sequence):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}")
