"""Every published tariff under examples/tariffs/ names its source and says how sure each figure
is; the bills worked by hand from each schedule are in test_tariff_derc_nea.py and
test_tariff_pge_uk.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tariff_examples import TARIFFS

from meterhub.billing.core.tariff import load_tariff


@pytest.mark.parametrize("path", sorted(TARIFFS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_states_its_source(path: Path) -> None:
    t = load_tariff(path)
    assert t.source.utility and t.source.document and t.source.url
    assert "NOT SURE" in path.read_text() or "Confident" in path.read_text()
