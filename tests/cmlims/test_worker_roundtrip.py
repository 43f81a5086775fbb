import pytest

from config.celery import ping


@pytest.mark.django_db(transaction=True)
def test_task_round_trip_through_real_broker_and_worker(celery_worker_process):
    result = ping.apply_async(args=["hello"], queue="default")
    assert result.get(timeout=60) == "hello"
