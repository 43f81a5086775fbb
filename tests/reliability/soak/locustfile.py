"""The soak's users (locust, closed loop): each logs in with its own account and repeats its kind of work.

Request names are the kinds the summary reports: ``lot read``, ``result entry``, ``allocation``,
``label job``, ``signature`` (plus ``shipment create`` and ``results read`` around them).
The plan (accounts, lots, tests) is the JSON the runner wrote: SOAK_PLAN.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
from collections import deque

from locust import HttpUser, between, events, task

PLAN = json.loads(open(os.environ["SOAK_PLAN"]).read())  # noqa: SIM115 - read once at import
NEXT_ACCOUNT = {persona: itertools.cycle(zip(names, PLAN["tokens"][persona], strict=True))
                for persona, names in PLAN["accounts"].items()}
TO_APPROVE: deque[int] = deque()  # results entered, waiting for a QC signature (shared by the users)
# What the server acknowledged, kind by kind (ids where there are ids): the runner reconciles the database
# with these, not with locust's counters (a request still in flight at the stop is in neither or both).
ACKNOWLEDGED: dict[str, list[int]] = {"allocation": [], "result entry": [], "signature": [], "label job": []}


@events.quitting.add_listener
def _write_acknowledged(environment, **_kwargs):
    with open(os.environ["SOAK_ACKS"], "w") as out:
        json.dump(ACKNOWLEDGED, out)


class SoakUser(HttpUser):
    abstract = True
    wait_time = between(0.5, 2.0)
    persona = ""

    def on_start(self):
        # Logged in by the runner before the clock starts (a login is a password hash: not what is measured).
        self.username, token = next(NEXT_ACCOUNT[self.persona])
        self.client.headers["Authorization"] = f"Token {token}"

    def expect(self, response, *codes: int) -> bool:
        if response.status_code not in codes:
            # Status 0 is no answer at all: name the connection error rather than an empty body.
            detail = response.text[:300] if response.status_code else repr(response.error)[:300]
            response.failure(f"{response.status_code}: {detail}")
            return False
        response.success()
        return True


class Reader(SoakUser):
    """Someone looking at lots: the list (a page, with a filter now and then) and one lot's detail."""

    fixed_count = len(PLAN["accounts"]["reader"])
    persona = "reader"

    @task(3)
    def lot_list(self):
        query = random.choice(["", "?status=released", "?status=qc_complete"])
        with self.client.get(f"/api/v1/lots/{query}", name="lot read", catch_response=True) as response:
            self.expect(response, 200)

    @task(2)
    def lot_detail(self):
        lot = random.choice(PLAN["released_lots"] + PLAN["open_lots"])
        with self.client.get(f"/api/v1/lots/{lot}/", name="lot read", catch_response=True) as response:
            self.expect(response, 200)


class Analyst(SoakUser):
    """Lab staff entering passing QC results on the lots still in testing."""

    fixed_count = len(PLAN["accounts"]["analyst"])
    persona = "analyst"

    @task
    def result_entry(self):
        test, (value, unit) = random.choice(list(PLAN["tests"].items()))
        tested_at = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
        body = {"lot_number": random.choice(PLAN["open_lots"]), "test": test, "value": value, "unit": unit,
                "tested_at": tested_at, "instrument": "INS-SOAK"}
        with self.client.post("/api/v1/qc/results/", json=body, name="result entry", catch_response=True) as response:
            if self.expect(response, 201):
                TO_APPROVE.append(response.json()["id"])
                ACKNOWLEDGED["result entry"].append(response.json()["id"])

    @task
    def results_read(self):
        lot = random.choice(PLAN["open_lots"])
        with self.client.get(f"/api/v1/lots/{lot}/results/", name="results read", catch_response=True) as response:
            self.expect(response, 200)


class Approver(SoakUser):
    """A QC officer signing results into approval (user name + password every time, 11.200(a))."""

    fixed_count = len(PLAN["accounts"]["approver"])
    persona = "approver"
    wait_time = between(2.0, 4.0)  # a person reads the result before signing (and stays under the throttle)

    @task
    def signature(self):
        try:
            result = TO_APPROVE.popleft()
        except IndexError:
            return
        body = {"username": self.username, "password": PLAN["password"], "reason": "reviewed (soak)"}
        with self.client.post(f"/api/v1/qc/results/{result}/approve/", json=body, name="signature",
                              catch_response=True) as response:
            if self.expect(response, 200):
                ACKNOWLEDGED["signature"].append(result)


class Coordinator(SoakUser):
    """A shipping coordinator filling a draft shipment vial by vial (FEFO) and printing its label."""

    fixed_count = len(PLAN["accounts"]["coordinator"])
    persona = "coordinator"

    def on_start(self):
        super().on_start()
        self.shipment = None
        self.labelled = False
        self.allocated = 0

    def shipment_new(self) -> bool:
        body = {"consignee": PLAN["consignee"], "product": PLAN["product"], "notes": "soak"}
        with self.client.post("/api/v1/shipments/", json=body, name="shipment create",
                              catch_response=True) as response:
            if not self.expect(response, 201):
                return False
            self.shipment, self.labelled, self.allocated = response.json()["id"], False, 0
        return True

    @task(2)
    def allocation(self):
        if (self.shipment is None or self.allocated >= 8) and not self.shipment_new():
            return
        with self.client.post(f"/api/v1/shipments/{self.shipment}/allocate/", json={"count": 1},
                              name="allocation", catch_response=True) as response:
            if self.expect(response, 200):
                self.allocated += 1
                ACKNOWLEDGED["allocation"].append(self.shipment)

    @task
    def label_job(self):
        if not self.allocated:
            return
        body = {"format": "zpl", "reprint_reason": "contents changed (soak)" if self.labelled else ""}
        with self.client.post(f"/api/v1/shipments/{self.shipment}/labels/", json=body, name="label job",
                              catch_response=True) as response:
            if self.expect(response, 202):
                self.labelled = True
                ACKNOWLEDGED["label job"].append(response.json()["job"])
