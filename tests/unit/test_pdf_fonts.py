"""Static bill fonts from the packaged variable Noto fonts, and which documents need shaping."""

from __future__ import annotations

import io

import pytest
from fontTools.ttLib import TTFont

from meterhub.billing.documents.pdf_fonts import (
    FACES,
    FALLBACK_FAMILY,
    FAMILY,
    font_paths,
    is_simple,
    make_pdf,
    static_instance,
)


def font(family: str, style: str, *, simple: bool = False) -> TTFont:
    return TTFont(io.BytesIO(static_instance(FACES[family, style], simple=simple)))


@pytest.mark.parametrize(("style", "weight"), [("", 400), ("B", 700)])
def test_instances_are_static_at_their_weight(style: str, weight: int) -> None:
    instance = font(FAMILY, style)
    assert "fvar" not in instance and "gvar" not in instance
    assert instance["OS/2"].usWeightClass == weight


def test_bold_glyphs_are_wider_than_regular_ones() -> None:
    regular, bold = font(FAMILY, ""), font(FAMILY, "B")
    glyph = regular.getBestCmap()[ord("m")]
    assert bold["hmtx"][glyph][0] > regular["hmtx"][glyph][0]


def test_devanagari_is_left_to_the_fallback_font() -> None:
    primary, fallback = font(FAMILY, "").getBestCmap(), font(FALLBACK_FAMILY, "").getBestCmap()
    assert ord("क") not in primary and ord("क") in fallback
    assert all(ord(char) in primary for char in "Aé€₹£\N{EN DASH}Ωж")
    assert "GSUB" in font(FALLBACK_FAMILY, "")  # conjunct rules kept for HarfBuzz


def test_simple_instances_keep_latin_and_symbols_without_layout_tables() -> None:
    simple = font(FAMILY, "", simple=True)
    cmap = simple.getBestCmap()
    assert all(ord(char) in cmap for char in "Aé€₹£\N{EN DASH}•")
    assert ord("ク") not in cmap
    assert not {"GSUB", "GPOS", "GDEF"} & set(simple.keys())


@pytest.mark.parametrize(
    ("text", "simple"),
    [
        ("Ward 4, Lalitpur", True),
        ("Pay ₹ 120 or £ 1 \N{EN DASH} now • Ελλάδα Москва Hà Nội", True),
        ("राम बहादुर थापा", False),
        ("Ward 4, काठमाडौं", False),
    ],
)
def test_documents_need_shaping_only_beyond_latin_greek_cyrillic(text: str, simple: bool) -> None:
    assert is_simple(text) is simple
    pdf = make_pdf([text])
    assert (pdf.text_shaping is None) is simple


def test_fonts_are_made_once_per_process() -> None:
    assert font_paths() == font_paths()
    assert all(path.stat().st_size > 10_000 for path in font_paths().values())
