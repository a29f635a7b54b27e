"""The `report` template: a title and sections (heading, text, table), with a header and
"Page N of M" on every page.

    {"title": "Q2 sales", "subtitle": "Region north",
     "sections": [{"heading": "Summary", "text": "Para one.\\n\\nPara two.",
                   "table": {"header": ["month", "units"], "rows": [["April", 120]]}}]}
"""

from __future__ import annotations

from pydantic import Field
from reportlab.platypus import Flowable, Spacer

from services.renderer.models import Line, Strict, Text, parse_data
from services.renderer.pages import PageDecor
from services.renderer.tables import TableData, table_flowable
from services.renderer.templates.base import RenderContext, Rendered
from services.renderer.text import para, paragraphs
from shared.messages import RenderParams

FILE_NAME = "report.pdf"


class Section(Strict):
    heading: Line
    text: Text = ""
    table: TableData | None = None


class ReportData(Strict):
    title: Line | None = None
    subtitle: Line | None = None
    sections: list[Section] = Field(min_length=1)


def render_report(params: RenderParams, ctx: RenderContext) -> Rendered:
    data = parse_data(ReportData, params.data, "report")
    for index, section in enumerate(data.sections):
        if section.table is not None:
            section.table.check(ctx.limits, f"data.sections.{index}.table")
    s = ctx.styles
    title = params.title or data.title or "Report"
    story: list[Flowable] = [para(title, s.title)]
    story.append(para(data.subtitle, s.subtitle) if data.subtitle else Spacer(1, 8))
    for section in data.sections:
        story.append(para(section.heading, s.headings[0]))
        story.extend(paragraphs(section.text, s.body))
        if section.table is not None:
            story += [table_flowable(section.table, ctx.page.frame_width, s), Spacer(1, 6)]
    return Rendered(
        story=story,
        file_name=FILE_NAME,
        title=title,
        decor=PageDecor(
            header_left=title, header_right=params.subject or "", footer_left=params.author or ""
        ),
    )
