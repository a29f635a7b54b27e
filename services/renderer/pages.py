"""Page geometry and what is drawn on every page: header, footer, "Page N of M".

`DecoratedCanvas` keeps each finished page until the document ends, so the total page count
is known when headers and footers are drawn (the usual reportlab "NumberedCanvas" recipe).
It also stops the build as soon as a page past the limit is finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from services.renderer.fonts import REGULAR
from services.renderer.styles import GRID, MUTED
from services.renderer.text import clean
from shared.errors import JobsuiteError

PAGE_SIZES: dict[str, tuple[float, float]] = {"A4": A4, "Letter": LETTER}
_DECOR_SIZE = 8


class PageLimitReached(JobsuiteError):
    """Raised from inside reportlab's build; the caller turns it into a PermanentJobError."""


@dataclass(frozen=True)
class PageSetup:
    size: tuple[float, float]  # points
    margin: float  # points, every side

    @classmethod
    def of(cls, page_size: str, margin_mm: float) -> PageSetup:
        return cls(PAGE_SIZES[page_size], margin_mm * mm)

    @property
    def frame_width(self) -> float:
        return self.size[0] - 2 * self.margin

    @property
    def frame_height(self) -> float:
        return self.size[1] - 2 * self.margin


@dataclass(frozen=True)
class PageDecor:
    """Text for every page's header and footer; the page numbers go bottom right."""

    header_left: str = ""
    header_right: str = ""
    footer_left: str = ""
    page_numbers: bool = True

    def draw(self, canvas: Canvas, page: PageSetup, number: int, total: int) -> None:
        left, right = page.margin, page.size[0] - page.margin
        top, bottom = page.size[1] - page.margin * 0.6, page.margin * 0.4
        width = page.frame_width
        canvas.saveState()
        canvas.setFont(REGULAR, _DECOR_SIZE)
        canvas.setFillColor(MUTED)
        if self.header_left or self.header_right:
            right_text = _fit(self.header_right, width * 0.4)
            gap = stringWidth(right_text, REGULAR, _DECOR_SIZE) + (12 if right_text else 0)
            canvas.drawString(left, top, _fit(self.header_left, width - gap))
            canvas.drawRightString(right, top, right_text)
            canvas.setStrokeColor(GRID)
            canvas.setLineWidth(0.5)
            canvas.line(left, top - 4, right, top - 4)
        numbers = f"Page {number} of {total}" if self.page_numbers else ""
        canvas.drawRightString(right, bottom, numbers)
        numbers_width = stringWidth(numbers, REGULAR, _DECOR_SIZE) + 12
        canvas.drawString(left, bottom, _fit(self.footer_left, width - numbers_width))
        canvas.restoreState()


@lru_cache(maxsize=64)  # the same few strings on every page
def _fit(text: str, width: float) -> str:
    """One line of `text` no wider than `width`, cut with an ellipsis."""
    line = " ".join(clean(text).split())
    if stringWidth(line, REGULAR, _DECOR_SIZE) <= width:
        return line
    while line and stringWidth(line + "…", REGULAR, _DECOR_SIZE) > width:
        line = line[:-1]
    return line.rstrip() + "…" if line else ""


class DecoratedCanvas(Canvas):
    def __init__(
        self, *args: Any, page: PageSetup, decor: PageDecor, max_pages: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._page_setup = page
        self._decor = decor
        self._max_pages = max_pages
        self._finished: list[dict[str, Any]] = []

    def showPage(self) -> None:
        if len(self._finished) >= self._max_pages:
            raise PageLimitReached(f"more than {self._max_pages} pages")
        self._finished.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._finished)
        for number, state in enumerate(self._finished, start=1):
            self.__dict__.update(state)
            self._decor.draw(self, self._page_setup, number, total)
            super().showPage()
        super().save()
