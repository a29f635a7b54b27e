"""reportlab markup in render data (corpus/render/): `<font color="[[[…]]]">` as in
CVE-2023-33733, `<img src="file:///etc/passwd"/>`, `<a href="javascript:…">`, in every text
field of every template. Each renders, and the PDF shows the markup as literal text: no
code run, no file read, no link or script in the document.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.messages import Job
from tests.security.conftest import Suite, corpus_files, corpus_json
from tests.support.broker import EventWatcher
from tests.support.pdfs import flat_text, open_pdf

# The CVE payload's own proof of execution (see font-color-cve-2023-33733.json).
CVE_MARKER = Path("/tmp/jobsuite-cve-2023-33733-pwned")
LITERAL: dict[str, str] = {
    "font-color-cve-2023-33733": "<font color=\"[[[getattr(pow, Word('__globals__'))",
    "img-src-file-etc-passwd": 'before <img src="file:///etc/passwd" width="100" height="100"/>',
    "a-href-javascript": '<a href="javascript:app.alert(1)">click</a>',
    "markup-in-every-report-field": '<font name="/etc/passwd">h</font>',
    "markup-in-invoice-parties": '<font color="[[[1]]]">Seller</font>',
}
ACTIVE = (b"/JavaScript", b"/JS", b"/URI", b"/Launch", b"/Annots", b"/OpenAction")
FILES = corpus_files("render")


def test_every_render_case_has_an_expectation() -> None:
    assert sorted(p.stem for p in FILES) == sorted(LITERAL)


@pytest.mark.parametrize("via", ["gateway", "queue"])
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_markup_prints_literally_and_runs_nothing(
    suite: Suite, events: EventWatcher, path: Path, via: str
) -> None:
    CVE_MARKER.unlink(missing_ok=True)
    params = corpus_json(path)
    if via == "gateway":
        response = suite.http.post("/jobs/render", json=params)
        assert response.status_code == 202, response.text
        event = suite.succeeded(events, response.json()["id"])
    else:
        event = suite.publish_with_good_job(events, Job(type="render", params=params))
        assert event["event"] == "job.succeeded", event
    (key,) = event["outputs"]
    data = suite.blobs.read_bytes(key)
    text = flat_text(open_pdf(data))
    assert LITERAL[path.stem] in text
    assert "root:" not in text  # /etc/passwd was not read into the document
    assert [marker for marker in ACTIVE if marker in data] == []
    assert not CVE_MARKER.exists()
    suite.check_after_case()
