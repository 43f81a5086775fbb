"""The CM release panel (qc/data/cm-release-panel.csv, from the shared reference) as specification items.

The file gives test, method, unit, limit kind and an example criterion. Where it says "product-specific"
or "example", there is no compendial limit: the panel gets a plausible demo value, marked ``demo_limit``
so nobody mistakes it for a validated one. Qualitative tests get their allowed and passing values here.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from qc.models import LimitKind

PANEL_CSV = Path(__file__).with_name("data") / "cm-release-panel.csv"
_KINDS = {"range": LimitKind.RANGE, "max": LimitKind.MAX, "min": LimitKind.MIN, "qualitative": LimitKind.QUALITATIVE}
D = Decimal

# test -> limits. "demo": the reference leaves the limit to the product; this value is for the demo only.
LIMITS: dict[str, dict] = {
    "Appearance (lyophilised cake)": {"allowed_values": ["conforms", "does not conform"],
                                      "passing_values": ["conforms"]},
    "Reconstitution time": {"upper": D("120")},
    "Residual moisture": {"upper": D("3.0")},
    "pH (reconstituted)": {"lower": D("7.0"), "upper": D("8.0"), "demo_limit": True},
    "Osmolality (reconstituted)": {"lower": D("270"), "upper": D("340"), "demo_limit": True},
    "Sterility": {"allowed_values": ["no growth", "growth"], "passing_values": ["no growth"]},
    "Bacterial endotoxin": {"upper": D("12.5"), "upper_inclusive": False, "demo_limit": True},
    "Mycoplasma": {"allowed_values": ["not detected", "detected"], "passing_values": ["not detected"]},
    "Total protein": {"lower": D("0.5"), "upper": D("5.0"), "demo_limit": True},
    "VEGF": {"lower": D("500"), "demo_limit": True},
    "HGF": {"lower": D("1000"), "demo_limit": True},
    "TGF-beta1": {"lower": D("200"), "demo_limit": True, "mandatory": False},
    "Extracellular vesicle particle count": {"lower": D("1e9"), "demo_limit": True},
    "EV markers (CD63/CD81/CD9)": {"allowed_values": ["positive", "negative"], "passing_values": ["positive"],
                                   "mandatory": False},
}


def panel_items(path: Path = PANEL_CSV) -> list[dict]:
    """Spec item fields for every row of the panel file, in file order."""
    items = []
    with path.open(newline="", encoding="utf-8") as handle:
        for order, row in enumerate(csv.DictReader(handle), start=1):
            test = row["test"].strip()
            limits = LIMITS.get(test)
            if limits is None:
                raise ValueError(f"{path.name}: no limits defined for test '{test}'")
            kind = _KINDS[row["limit"].strip()]
            parts = (row.get("example_criterion", "").strip(), row.get("source", "").strip())
            source = "; ".join(x for x in parts if x)
            items.append({
                "order": order, "test": test, "method": row["method"].strip(),
                "unit": "" if kind == LimitKind.QUALITATIVE else row["unit"].strip(),
                "limit_kind": kind, "source": source[:200], "mandatory": True, "demo_limit": False, **limits,
            })
    return items
