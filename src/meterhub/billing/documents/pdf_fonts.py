"""Unicode fonts for bill PDFs, from the Noto fonts installed as Python packages.

Noto Sans prints Latin, Greek, Cyrillic and the signs a bill uses (₹, £, €, dashes); Noto Sans
Devanagari is the fallback that prints Devanagari. Noto Sans has Devanagari glyphs too,
but they are cut out of it here: fpdf2 shapes each run of text in one font as a whole, and
HarfBuzz takes the script of a run from its first letter, so "Ward 4, क्षेत्र" in one font would
be shaped as Latin and lose its conjuncts. Through the fallback font every Devanagari run is a
run of its own, shaped as Devanagari. The fallback is added to a document only when one of its
characters is met, because fpdf2 embeds every font it was given.

Both packages ship variable fonts, and a PDF needs static ones: each weight is pinned with
HarfBuzz's instancer (milliseconds; fontTools' instancer takes seconds per weight) once per
process and written to a temporary directory, since fpdf2 loads fonts from files. Nothing is
downloaded: the fonts are the packages' files.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

FAMILY = "NotoSans"
FALLBACK_FAMILY = "NotoSansDevanagari"

# Characters that print glyph by glyph, without shaping: Latin (Vietnamese too), Greek,
# Cyrillic, punctuation, currency and letterlike signs. A document made of these alone (most
# bills) gets fonts cut down to them and without the OpenType layout tables, which only a
# shaping engine reads: fpdf2 drops them from what it embeds, but its subsetter decodes them
# first, and that and the 3,000 other glyphs cost more than the rest of the bill.
SIMPLE_RANGES = ((0x0000, 0x0590), (0x1E00, 0x2200))
LAYOUT_TABLES = ("GDEF", "GPOS", "GSUB")
# Devanagari, Vedic Extensions, Common Indic Number Forms, Devanagari Extended: left to the
# fallback font.
DEVANAGARI_RANGES = ((0x0900, 0x0980), (0x1CD0, 0x1D00), (0xA830, 0xA840), (0xA8E0, 0xA900))


@dataclass(frozen=True, slots=True)
class FontSource:
    package: str  # import name of the font package
    file: str  # variable font inside the package's ``files`` folder
    weight: int  # the ``wght`` axis is pinned here, every other axis at its default
    without_devanagari: bool  # cut out ``DEVANAGARI_RANGES``


FACES: dict[tuple[str, str], FontSource] = {
    (FAMILY, ""): FontSource("fontpkg_noto_sans", "NotoSans[wdth,wght].ttf", 400, True),
    (FAMILY, "B"): FontSource("fontpkg_noto_sans", "NotoSans[wdth,wght].ttf", 700, True),
    (FALLBACK_FAMILY, ""): FontSource(
        "fontpkg_noto_sans_devanagari", "NotoSansDevanagari[wdth,wght].ttf", 400, False
    ),
}

_lock = threading.Lock()
_directory: tempfile.TemporaryDirectory[str] | None = None
_paths: dict[tuple[str, str, bool], Path] = {}


def static_instance(source: FontSource, *, simple: bool = False) -> bytes:
    """The variable font ``source`` names, pinned to a static font at its weight; if ``simple``,
    only its characters in ``SIMPLE_RANGES`` and no layout tables."""
    import uharfbuzz as hb

    face = hb.Face(hb.Blob((files(source.package) / "files" / source.file).read_bytes()))
    request = hb.SubsetInput()
    request.keep_everything()  # every table and layout feature
    if simple:
        _only(request, {c for start, end in SIMPLE_RANGES for c in range(start, end)})
        request.drop_table_tag_set.update(_tag(tag) for tag in LAYOUT_TABLES)
    elif source.without_devanagari:
        cut = {c for start, end in DEVANAGARI_RANGES for c in range(start, end)}
        _only(request, set(face.unicodes) - cut)
    if not (
        request.pin_all_axes_to_default(face)
        and request.pin_axis_location(face, "wght", source.weight)
    ):
        raise ValueError(f"{source.file} has no weight {source.weight}")
    data: bytes = hb.subset(face, request).blob.data
    return data


def _only(request: Any, unicodes: set[int]) -> None:
    # The glyphs of these characters and what the layout rules make of them, no others.
    request.glyph_set.clear()
    request.unicode_set.clear()
    request.unicode_set.update(unicodes)


def _tag(name: str) -> int:
    return int.from_bytes(name.encode("ascii"), "big")


def font_paths() -> dict[tuple[str, str, bool], Path]:
    """(family, style, simple) -> static TTF file, made on the process's first call."""
    global _directory
    with _lock:
        if not _paths:
            # Removed when the process exits (TemporaryDirectory's finaliser).
            _directory = tempfile.TemporaryDirectory(prefix="meterhub-fonts-")
            for (family, style), source in FACES.items():
                # The fallback is met only in documents that are not simple.
                for simple in (False, True) if family == FAMILY else (False,):
                    name = f"{family}-{style or 'R'}{'-simple' if simple else ''}.ttf"
                    path = Path(_directory.name) / name
                    path.write_bytes(static_instance(source, simple=simple))
                    _paths[family, style, simple] = path
        return dict(_paths)


def is_simple(text: str) -> bool:
    """Whether every character of ``text`` is in ``SIMPLE_RANGES`` (prints without shaping)."""
    return all(any(start <= ord(char) < end for start, end in SIMPLE_RANGES) for char in text)


def make_pdf(text: Iterable[str] = (), **options: Any) -> Any:
    """An ``FPDF`` (``options`` go to it) with the Unicode family ``FAMILY``, regular and bold.

    ``text`` is every string the document may print: if all of it is simple the document gets
    the cut-down fonts, else the whole fonts, the fallback font when needed, and HarfBuzz
    shaping (Devanagari conjuncts and vowel signs, Latin kerning)."""
    from fpdf import FPDF

    paths = font_paths()
    simple = all(is_simple(value) for value in text)

    class BillPDF(FPDF):
        fallback_added = False

        def get_fallback_font(self, char: str, style: str = "") -> str | None:
            # fpdf2 asks only for characters the current font lacks: the first such one adds
            # the fallback font, so documents that never need it do not carry it.
            if not self.fallback_added:
                self.fallback_added = True
                self.add_font(FALLBACK_FAMILY, "", paths[FALLBACK_FAMILY, "", False])
                self.set_fallback_fonts([FALLBACK_FAMILY], exact_match=False)
            found: str | None = super().get_fallback_font(char, style)
            return found

    pdf = BillPDF(**options)
    pdf.add_font(FAMILY, "", paths[FAMILY, "", simple])
    pdf.add_font(FAMILY, "B", paths[FAMILY, "B", simple])
    if not simple:
        pdf.set_text_shaping(True)
    return pdf
