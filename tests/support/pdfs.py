"""Reading rendered PDFs back for assertions (pypdf): text, images, metadata, page sizes."""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader
from pypdf.generic import DictionaryObject, IndirectObject


def open_pdf(data: bytes) -> PdfReader:
    assert data.startswith(b"%PDF-"), data[:20]
    return PdfReader(io.BytesIO(data))


def text_of(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def flat_text(reader: PdfReader) -> str:
    """The text with every run of whitespace as one space (lines wrap wherever they fit)."""
    return " ".join(text_of(reader).split())


def page_sizes(reader: PdfReader) -> list[tuple[float, float]]:
    return [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]


def image_xobjects(reader: PdfReader) -> int:
    """How many distinct image XObjects the pages draw (a picture used twice counts once)."""
    seen: set[Any] = set()
    for page in reader.pages:
        _collect_images(page.get("/Resources"), seen)
    return len(seen)


def _collect_images(resources: Any, seen: set[Any]) -> None:
    resources = _resolve(resources)
    if not isinstance(resources, DictionaryObject):
        return
    xobjects = _resolve(resources.get("/XObject"))
    if not isinstance(xobjects, DictionaryObject):
        return
    for ref in xobjects.values():
        obj = _resolve(ref)
        ident = (ref.idnum, ref.generation) if isinstance(ref, IndirectObject) else id(obj)
        if obj.get("/Subtype") == "/Image":
            seen.add(ident)
        elif obj.get("/Subtype") == "/Form":
            _collect_images(obj.get("/Resources"), seen)


def _resolve(obj: Any) -> Any:
    return obj.get_object() if isinstance(obj, IndirectObject) else obj
