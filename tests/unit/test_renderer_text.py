"""User text into reportlab: escaping, cleaning, and what the embedded fonts can show."""

from __future__ import annotations

import pytest

from services.renderer.fonts import FONT_DIR, check_coverage, uncovered
from services.renderer.styles import styles
from services.renderer.text import clean, markup, paragraphs
from shared.errors import PermanentJobError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<b>x</b>", "&lt;b&gt;x&lt;/b&gt;"),
        ("a & b", "a &amp; b"),
        ("&amp; &#65;", "&amp;amp; &amp;#65;"),
        ("line one\nline two", "line one<br/>line two"),
        ('<img src="x"/>', '&lt;img src="x"/&gt;'),
    ],
)
def test_markup_escapes_every_tag_and_entity(text: str, expected: str) -> None:
    assert markup(text) == expected


def test_clean_normalises_line_breaks_tabs_controls_and_accents() -> None:
    assert clean("a\r\nb\rc") == "a\nb\nc"
    assert clean("a\tb") == "a    b"
    assert clean("a\x00\x08\x0b\x1f\x7f\x85b") == "ab"
    assert clean("e\u0301") == "\u00e9"
    assert clean("bad \ud800 surrogate") == "bad  surrogate"


def test_blank_lines_separate_paragraphs() -> None:
    body = styles().body

    parts = paragraphs("one\n\n\n two\nstill two\n \nthree\n\n", body)

    assert [p.text for p in parts] == ["one", "two<br/>still two", "three"]


def test_the_fonts_cover_latin_greek_cyrillic_but_not_cjk() -> None:
    assert uncovered("Straße Ελληνικά Кириллица € “” … ≤") == []
    assert uncovered("漢字 and かな and 한글 and 漢") == ["漢", "字", "か", "な", "한", "글"]


def test_ascii_text_is_all_shown_control_characters_and_all() -> None:
    """ASCII takes a short cut (every printable one has a glyph; `clean` drops the rest)."""
    assert uncovered("plain\ttext\r\nwith \x00\x07\x1b[31m controls\x7f ~") == []
    check_coverage({"blocks": ["ascii", {"bullets": ["a\tb", "c\x01"]}]}, "params.data")


def test_coverage_errors_name_the_path_and_at_most_five_characters() -> None:
    data = {"blocks": [{"paragraph": "ok"}, {"bullets": ["fine", "一二三四五六七"]}]}

    with pytest.raises(PermanentJobError) as caught:
        check_coverage(data, "params.data")

    message = str(caught.value)
    assert message.startswith("params.data.blocks.1.bullets.1: ")
    assert "'一' (U+4E00)" in message
    assert "and 2 more" in message


def test_the_font_files_and_their_licence_ship_with_the_service() -> None:
    assert (FONT_DIR / "DejaVuSans.ttf").stat().st_size > 500_000
    assert (FONT_DIR / "DejaVuSans-Bold.ttf").stat().st_size > 500_000
    assert "Bitstream" in (FONT_DIR / "LICENSE").read_text()
