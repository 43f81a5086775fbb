"""A task round trip through the real broker (Redis in CI, the embedded transport without REDIS_URL)
and a real worker process consuming all three queues."""

import pytest

from config.celery import ping


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("queue", ["default", "labels", "reports"])
def test_task_round_trip_through_real_broker_and_worker(celery_worker_process, queue):
    result = ping.apply_async(args=[f"hello {queue}"], queue=queue)

    assert result.get(timeout=60) == f"hello {queue}"
    assert result.status == "SUCCESS"
