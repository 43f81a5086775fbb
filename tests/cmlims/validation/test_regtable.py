"""The README's regulatory table matches the register: every clause of the regulatory reference and every
business rule is a row, with its register source and statement, and every test it names claims that row's id
(``@pytest.mark.req``). New tests claiming a row may be missing from it until the table is regenerated
(``python -m cmlims.validation.regtable``); a row naming a test that no longer claims it fails."""

import re
from pathlib import Path

import pytest

from cmlims.validation import regtable
from cmlims.validation.register import register_load

ROOT = Path(__file__).resolve().parents[3]
# The shared reference sits beside the checkout (../shared) on the project's machines (../../shared for a
# worktree); elsewhere only the register's own count is checked.
REFERENCES = [base / "shared" / "reference" / "regulatory.md" for base in (ROOT.parent, ROOT.parent.parent)]


def readme_rows() -> list[list[str]]:
    table = regtable.readme_table((ROOT / "README.md").read_text(encoding="utf-8"))
    assert table is not None, "README.md lost the regulatory table's markers"
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| id ")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


@pytest.mark.req("README-REC-REG-TABLE")
def test_readme_table_lists_every_clause_and_rule_of_the_register_with_tests_that_claim_them():
    register = register_load()
    wanted = [r for r in register.values() if regtable.is_table_row(r.id)]
    rows = readme_rows()
    assert [row[0] for row in rows] == [r.id for r in wanted]
    claims = regtable.tests_by_requirement()
    for row, requirement in zip(rows, wanted, strict=True):
        assert row[1] == requirement.source.replace("|", "\\|") and row[2] == requirement.statement, row[0]
        named = re.findall(r"`([^`]+::[^`]+)`", row[3])
        assert named, f"{row[0]}: no test proves it"
        assert set(named) <= set(claims.get(row[0], [])), f"{row[0]}: names a test that does not claim it"


@pytest.mark.req("README-REC-REG-TABLE")
def test_the_table_covers_all_nineteen_reference_clauses_and_ten_rules():
    ids = [row[0] for row in readme_rows()]
    clauses = [i for i in ids if i.startswith(regtable.CLAUSE_PREFIXES)]
    # The ten numbered rules of the design, each present; their extensions (RULE-TIME-1, RULE-2-SPEC-AUTHOR)
    # are rows of their own.
    numbered = [i for i in ids if i.startswith(regtable.RULE_PREFIX) and i.removeprefix(regtable.RULE_PREFIX).isdigit()]
    assert sorted(numbered, key=lambda i: int(i.split("-")[1])) == [f"RULE-{n}" for n in range(1, 11)]
    for reference in [r for r in REFERENCES if r.exists()][:1]:
        reference_rows = [line for line in reference.read_text(encoding="utf-8").splitlines()
                          if line.startswith("| ") and not line.startswith(("| clause", "|---"))]
        assert len(clauses) == len(reference_rows)
    assert len(clauses) == 19


def test_the_generator_reads_markers_and_renders_missing_tests(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n@pytest.mark.req('RULE-1', via='api')\ndef test_a():\n    pass\n\n"
        "@pytest.mark.req('P11-11.50')\ndef helper_not_a_test():\n    pass\n")
    found = regtable.tests_by_requirement(tmp_path)
    assert list(found) == ["RULE-1"] and found["RULE-1"][0].endswith("test_x.py::test_a")
    register = {k: v for k, v in register_load().items() if k in ("RULE-1", "RULE-2", "FEAT-LABELS")}
    table = regtable.table_render(register, found)
    assert "| RULE-2 |" in table and "**no test**" in table and "FEAT-LABELS" not in table
