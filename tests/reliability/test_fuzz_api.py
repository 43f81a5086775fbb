"""Schemathesis against the live OpenAPI schema (issue 18 item 2): no 5xx, responses as the schema says.

Each of lab staff, QC officer and shipping coordinator fuzzes every operation with a token of its own (the
revoke operation never gets that token's id), a fixed seed and a bounded number of examples per operation.
Requests go through Django's WSGI application in this process, each in a savepoint of its own, so one
example's database error cannot poison the next. The schema-valid examples name real records (a released lot,
its donor, bank, culture and harvest, a consignee, a draft shipment: ``tests/support/fuzz_data.py``), since no
schema can say which ids exist. The run's figures go to ``reports/fuzz.json``.
"""

import contextlib
import json
import os
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, assume, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from cmlims import roles
from tests.support.fuzz_data import fuzz_records, real_data_hooks

pytestmark = pytest.mark.django_db

# Examples per operation and role: valid data (as the schema describes it) and, half as many, invalid data.
EXAMPLES = int(os.environ.get("CMLIMS_FUZZ_EXAMPLES", "6"))
SEED = 20261202
REVOKE = ("POST", "/api/v1/auth/tokens/{id}/revoke/")
ROLES = {"lab staff": roles.LAB_STAFF, "QC officer": roles.QC_OFFICER,
         "shipping coordinator": roles.SHIPPING_COORDINATOR}


@contextlib.contextmanager
def wsgi_app():
    """Django's WSGI application on the test's own connection: as Django's test client does, the request
    signals do not close it (that would end the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.timeout(900)  # a role takes 2–5 min alone on the CI machine, much longer beside other runs
@pytest.mark.req("README-FUZZ", "README-API-ERRORS", via="api")
@pytest.mark.parametrize("role", list(ROLES))
def test_fuzz_every_operation_no_5xx_and_responses_match_the_schema(role, make_user, auth_client):
    user = make_user(f"fuzz-{role.split()[0].lower()}", ROLES[role])
    client = auth_client(user)
    token = client._credentials["HTTP_AUTHORIZATION"]
    own_token_id = client.get("/api/v1/auth/tokens/").json()["results"][0]["id"]
    hooks = real_data_hooks(fuzz_records(coordinator=make_user("fuzz-world-coordinator", roles.SHIPPING_COORDINATOR)),
                            signer=user.get_username())
    with wsgi_app() as app:
        figures, failures = _fuzz(app, token, own_token_id, hooks)
    report = Path("reports/fuzz.json")
    report.parent.mkdir(exist_ok=True)
    previous = json.loads(report.read_text()) if report.exists() else {}
    previous[role] = {**figures, "statuses": dict(figures["statuses"])}
    report.write_text(json.dumps(previous, indent=1, sort_keys=True))
    assert not failures, "\n".join(failures[:40])
    # The schema says what each operation accepts: an operation whose schema-valid examples are mostly refused
    # (schemathesis' "mostly rejected" warning) is a schema that no longer tells clients the server's rules.
    assert not figures["mostly_rejected"], json.dumps(figures["mostly_rejected"], indent=1)


def _fuzz(app, token: str, own_token_id: int, hooks):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", app, headers={"Authorization": token})
    figures = {"operations": 0, "examples": 0, "server_errors": 0, "statuses": Counter(), "mostly_rejected": []}
    failures = []
    for operation in _operations(schema):
        statuses, valid, why = Counter(), Counter(), Counter()  # valid: what the schema-valid examples got
        for mode, examples in ((GenerationMode.POSITIVE, EXAMPLES), (GenerationMode.NEGATIVE, EXAMPLES // 2)):
            _fuzz_operation(app, token, own_token_id, operation, (mode, hooks if mode == GenerationMode.POSITIVE
                                                                  else None), examples, statuses, (valid, why),
                            failures)
        figures["operations"] += 1
        figures["examples"] += sum(statuses.values())
        figures["server_errors"] += sum(n for status, n in statuses.items() if status >= 500)
        figures["statuses"].update(statuses)
        # schemathesis warns when most valid examples are refused as invalid: the schema does not say enough
        if sum(valid.values()) and valid[400] + valid[422] > sum(valid.values()) / 2:
            figures["mostly_rejected"].append({"operation": f"{operation.method.upper()} {operation.path}",
                                               "why": [text for text, _ in why.most_common(3)]})
    return figures, failures


def _fuzz_operation(app, token, own_token_id, operation, generation, examples, statuses, valid_tally,
                    failures) -> None:
    (mode, hooks), (valid, why) = generation, valid_tally
    @seed(SEED)
    @settings(max_examples=examples, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, hooks=hooks))
    def fuzz(case):
        if (case.method.upper(), case.operation.path) == REVOKE:  # the fuzzer keeps its own token
            assume(str(case.path_parameters.get("id")) != str(own_token_id))
        sid = transaction.savepoint()  # one example's database error cannot abort the next one's transaction
        try:
            response = case.call(app=app, headers={"Authorization": token})
        finally:
            transaction.savepoint_rollback(sid)
        statuses[response.status_code] += 1
        if mode == GenerationMode.POSITIVE:
            valid[response.status_code] += 1
            if response.status_code == 400:
                why[json.loads(response.content or b"{}").get("message", "")[:120]] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance,
                                                     content_type_conformance])
        except (Exception, FailureGroup) as exc:  # noqa: BLE001 - every failure is collected and reported together
            # several checks failing on one response come as one group (a BaseExceptionGroup): each is reported
            for failure in exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]:
                failures.append(f"{case.method.upper()} {case.formatted_path} ({mode.value}) -> "
                                f"{response.status_code}: {str(failure)[:600]}")

    try:
        fuzz()
    except Unsatisfiable:
        assert mode == GenerationMode.NEGATIVE, operation.label  # nothing in the schema to get wrong
