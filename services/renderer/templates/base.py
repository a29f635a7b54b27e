"""What every template gets (`RenderContext`) and gives back (`Rendered`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from reportlab.platypus import Flowable

from services.renderer.images import InputImage, load_image
from services.renderer.limits import RenderLimits
from services.renderer.pages import PageDecor, PageSetup
from services.renderer.styles import Styles
from shared.blobs import BlobStore
from shared.errors import PermanentJobError
from shared.jobtypes.render import RenderParams


@dataclass
class RenderContext:
    job_id: str
    inputs: list[str]
    blobs: BlobStore
    limits: RenderLimits
    page: PageSetup
    styles: Styles
    _images: dict[str, InputImage] = field(default_factory=dict)

    def input_key(self, ref: int | str, where: str) -> str:
        """An input named by its index or its key; only the job's own inputs are reachable."""
        if isinstance(ref, int):
            if not 0 <= ref < len(self.inputs):
                raise PermanentJobError(
                    f"{where}: input {ref} does not exist (the job has {len(self.inputs)} inputs)",
                    kind="invalid_data",
                )
            return self.inputs[ref]
        if ref not in self.inputs:
            raise PermanentJobError(
                f"{where}: {ref!r} is not one of this job's inputs", kind="invalid_data"
            )
        return ref

    def image(self, key: str) -> InputImage:
        """Each input is decoded once, however often it is placed."""
        if key not in self._images:
            self._images[key] = load_image(self.blobs, key, self.limits.max_image_pixels)
        return self._images[key]


@dataclass(frozen=True)
class Rendered:
    story: list[Flowable]
    file_name: str  # under outputs/<job id>/
    title: str  # the PDF's title when the job gives none
    decor: PageDecor


class Template(Protocol):
    def __call__(self, params: RenderParams, ctx: RenderContext) -> Rendered: ...
