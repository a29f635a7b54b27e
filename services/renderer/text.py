"""User text into reportlab, safely.

Every string from a job goes through `markup()` before it reaches a `Paragraph`: reportlab
parses paragraph text as markup, and tags such as `<font color=…>`, `<img src=…>` or
`<a href=…>` in data would run or load things (CVE-2023-33733 was exactly that). Escaped,
they print as the literal text the user sent.
"""

from __future__ import annotations

import re
import unicodedata
from xml.sax.saxutils import escape

from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Paragraph

# C0/C1 controls (but tab and newline) and lone surrogates (JSON can carry them) have no
# glyph and would break the PDF's text encoding.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean(text: str) -> str:
    """Text as it will be laid out: NFC (so accents use precomposed glyphs), one kind of
    line break, tabs as spaces, no control characters."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _UNPRINTABLE.sub("", text.replace("\t", "    "))


def markup(text: str) -> str:
    """Paragraph markup that shows `text` literally, line breaks kept."""
    return escape(clean(text)).replace("\n", "<br/>")


def para(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(markup(text), style)


def one_line(text: str, style: ParagraphStyle, width: float) -> Paragraph:
    """`text` on a single line of at most `width` points: the font shrinks to fit rather
    than the line wrapping (an invoice number broken mid-token reads as two numbers)."""
    shown = " ".join(clean(text).split())
    natural = stringWidth(shown, style.fontName, style.fontSize)
    if natural <= width:
        return Paragraph(markup(shown), style)
    scale = width / natural * 0.98  # a hair of room: the paragraph measures with rounding
    fitted = ParagraphStyle(
        f"{style.name}_fitted",
        style,
        fontSize=style.fontSize * scale,
        leading=style.leading * scale,
        splitLongWords=0,
    )
    return Paragraph(markup(shown), fitted)


def paragraphs(text: str, style: ParagraphStyle) -> list[Paragraph]:
    """One Paragraph per blank-line-separated block of `text`."""
    blocks = re.split(r"\n\s*\n", clean(text).strip())
    return [para(block, style) for block in blocks if block.strip()]
