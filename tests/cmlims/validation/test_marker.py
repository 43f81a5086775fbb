"""@pytest.mark.req: checked at collection, written into the JUnit report."""

from cmlims.validation.matrix import junit_read
from cmlims.validation.register import DEFAULT_REGISTER, register_load


def test_unknown_requirement_id_stops_the_run_naming_the_test(run_pytest):
    result, junit = run_pytest('''
        import pytest

        @pytest.mark.req("REQ-PASS", "REQ-NOPE")
        def test_claims_too_much():
            pass

        def test_untagged():
            pass
    ''')
    assert result.returncode == 4  # pytest's usage error: nothing ran
    assert "test_sample.py::test_claims_too_much" in result.stderr
    assert "unknown requirement id(s) REQ-NOPE" in result.stderr
    assert "passed" not in result.stdout


def test_more_than_three_ids_stop_the_run(run_pytest):
    result, _ = run_pytest('''
        import pytest

        @pytest.mark.req("REQ-PASS", "REQ-FAIL", "REQ-NONE", "REQ-HIGH-OK")
        def test_four():
            pass
    ''')
    assert result.returncode == 4
    assert "test_sample.py::test_four" in result.stderr
    assert "names 4 requirements; at most 3 per test" in result.stderr


def test_empty_marker_and_unknown_via_are_refused(run_pytest):
    result, _ = run_pytest('''
        import pytest

        @pytest.mark.req()
        def test_none():
            pass

        @pytest.mark.req("REQ-PASS", via="telepathy")
        def test_bad_via():
            pass
    ''')
    assert result.returncode == 4
    assert "test_sample.py::test_none: @pytest.mark.req() names no requirement" in result.stderr
    assert "test_sample.py::test_bad_via" in result.stderr and "via must be one of api, browser" in result.stderr


def test_ids_how_each_test_reaches_the_system_and_run_facts_are_in_the_junit_report(sample_run):
    run = junit_read(path=sample_run)
    by_name = {result.name.split("::")[-1]: result for result in run.results}
    assert by_name["test_passes"].requirement_ids == ("REQ-PASS", "REQ-HIGH-OK", "REQ-HIGH-SERVICE")
    assert by_name["test_passes"].via == "service"
    assert by_name["test_passes_through_the_api"].via == "api"  # uses the auth_client fixture
    assert by_name["test_declares_how_it_reaches_the_system"].via == "browser"
    assert by_name["test_fails"].outcome == "failed"
    assert by_name["test_skipped"].outcome == "skipped"
    import platform

    import django

    assert run.properties["python"] == platform.python_version()
    assert run.properties["django"] == django.get_version()
    assert len(run.properties["commit"].removesuffix("-dirty")) == 40
    assert run.properties["run_started"].endswith("+00:00")
    assert run.properties["database_vendor"] == "none opened"  # this sample run never touched a database
    assert run.totals == {"tests": 6, "failures": 1, "errors": 0, "skipped": 1}


def test_the_project_register_loads_and_holds_every_regulatory_row_and_business_rule():
    register = register_load(path=DEFAULT_REGISTER)
    expected = {"P11-11.10d", "P11-11.10e", "P11-11.10f", "P11-11.10g", "P11-11.10bc", "P11-11.50", "P11-11.70",
                "P11-11.200a", "P11-11.300", "A11-9", "A11-8.2", "A11-14", "A11-15", "211-188b", "211-192",
                "1271-290", "1271-265", "1271-370", "ALCOA", *(f"RULE-{n}" for n in range(1, 11))}
    assert expected <= set(register)
    assert all(register[req_id].mandatory for req_id in expected)
