"""The `render` job type: a named template and its JSON data in, one PDF out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from shared.jobtypes.models import Strict, first_error
from shared.jobtypes.render_data import TEMPLATE_DATA
from shared.jobtypes.spec import CliOption, JobTypeSpec, no_limits, nothing_to_check


class RenderParams(Strict):
    """`data` is checked against its template's model by the gateway (`CheckedRenderParams`)
    and again by the renderer, which names the field in its error."""

    template: Literal["document", "invoice", "report"]
    data: dict[str, Any] = Field(default_factory=dict)
    page_size: Literal["A4", "Letter"] = "A4"
    title: str | None = Field(default=None, max_length=300)
    author: str | None = Field(default=None, max_length=300)
    subject: str | None = Field(default=None, max_length=300)
    # Every side; the header and footer sit inside the top and bottom margins.
    margin_mm: float = Field(default=20, ge=10, le=50)


class CheckedRenderParams(RenderParams):
    """What the gateway accepts: `data` must fit its template, given or not (an invoice
    without data is refused here, not in the renderer)."""

    data: dict[str, Any] = Field(default_factory=dict, validate_default=True)

    @field_validator("data")
    @classmethod
    def _data_fits_its_template(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        model = TEMPLATE_DATA.get(info.data.get("template", ""))
        if model is not None:
            try:
                model.model_validate(data)
            except ValidationError as e:
                raise ValueError(first_error(e)) from None
        return data


RENDER: JobTypeSpec[RenderParams, None] = JobTypeSpec(
    name="render",
    service="renderer",
    summary="Render a PDF from a template (`document`, `invoice`, `report`) and its data.",
    params=RenderParams,
    request=CheckedRenderParams,
    # The renderer's own limits (pages, table rows, images) need the PDF laid out.
    limits=no_limits,
    check=nothing_to_check,
    cli=(
        CliOption("--template", "template", "document, invoice or report", required=True),
        CliOption(
            "--data", "data", "the template's data: a JSON file, - for stdin", reads="json_file"
        ),
        CliOption("--page-size", "page_size", "A4 or Letter"),
        CliOption("--title", "title", "the PDF's title (metadata; the heading is the data's)"),
        CliOption("--author", "author", "the PDF's author"),
    ),
)
