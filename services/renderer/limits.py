"""The renderer's limits, from Settings; going over one is a PermanentJobError that says which."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import Settings
from shared.errors import PermanentJobError

# Not a setting: past this a table is unreadable on any page size we offer.
MAX_TABLE_COLUMNS = 20


@dataclass(frozen=True)
class RenderLimits:
    max_pdf_pages: int = 200
    max_table_rows: int = 5_000
    max_pdf_images: int = 100
    max_image_pixels: int = 50_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderLimits:
        return cls(
            max_pdf_pages=settings.max_pdf_pages,
            max_table_rows=settings.max_table_rows,
            max_pdf_images=settings.max_pdf_images,
            max_image_pixels=settings.max_image_pixels,
        )

    def check_table(self, rows: int, columns: int, where: str) -> None:
        if rows > self.max_table_rows:
            raise PermanentJobError(
                f"{where} has {rows} rows, over the limit of {self.max_table_rows} "
                "(MAX_TABLE_ROWS)",
                kind="limit_exceeded",
            )
        if columns > MAX_TABLE_COLUMNS:
            raise PermanentJobError(
                f"{where} has {columns} columns, over the limit of {MAX_TABLE_COLUMNS}",
                kind="limit_exceeded",
            )

    def check_images(self, count: int) -> None:
        if count > self.max_pdf_images:
            raise PermanentJobError(
                f"the PDF would hold {count} images, over the limit of {self.max_pdf_images} "
                "(MAX_PDF_IMAGES)",
                kind="limit_exceeded",
            )

    def pages_exceeded(self) -> PermanentJobError:
        return PermanentJobError(
            f"the PDF would have more than {self.max_pdf_pages} pages, the limit (MAX_PDF_PAGES)",
            kind="limit_exceeded",
        )
