"""The register's own checks."""

import pytest

from cmlims.validation.register import RegisterError, register_load


def test_register_refuses_a_duplicate_id_and_a_bad_risk(tmp_path):
    entry = "  - {id: A, statement: s, source: x, risk: %s, gamp_category: 5, mandatory: true}\n"
    path = tmp_path / "r.yaml"
    path.write_text("requirements:\n" + entry % "high" + entry % "high")
    with pytest.raises(RegisterError, match="entry 2 .A.: duplicate id A"):
        register_load(path=path)
    path.write_text("requirements:\n" + entry % "severe")
    with pytest.raises(RegisterError, match="risk must be one of high, medium, low, not 'severe'"):
        register_load(path=path)
    path.write_text("requirements:\n  - {id: B, statement: s}\n")
    with pytest.raises(RegisterError, match="missing source, risk, gamp_category, mandatory"):
        register_load(path=path)
