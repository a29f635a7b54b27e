"""The `report` template: a title and sections (heading, text, table), with a header and
"Page N of M" on every page.

    {"title": "Q2 sales", "subtitle": "Region north",
     "sections": [{"heading": "Summary", "text": "Para one.\\n\\nPara two.",
                   "table": {"header": ["month", "units"], "rows": [["April", 120]]}}]}
"""

from __future__ import annotations

from reportlab.platypus import Flowable, Spacer

from services.renderer.models import parse_data
from services.renderer.pages import PageDecor
from services.renderer.tables import check_table, table_flowable
from services.renderer.templates.base import RenderContext, Rendered
from services.renderer.text import para, paragraphs
from shared.jobtypes.render import RenderParams
from shared.jobtypes.render_data import ReportData

FILE_NAME = "report.pdf"


def render_report(params: RenderParams, ctx: RenderContext) -> Rendered:
    data = parse_data(ReportData, params.data, "report")
    for index, section in enumerate(data.sections):
        if section.table is not None:
            check_table(section.table, ctx.limits, f"data.sections.{index}.table")
    s = ctx.styles
    # The visible heading comes from the data; params.title is the PDF's metadata only.
    title = data.title or "Report"
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
