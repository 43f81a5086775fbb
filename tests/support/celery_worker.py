"""`python -m tests.support.celery_worker <celery args>`: the celery command under the test clock.

Tests start their real workers through this module so that a worker and the test agree on "now"
when CMLIMS_TEST_CLOCK is set (see tests/support/clock.py); unset, it is plain `celery`.
"""

import sys

from tests.support.clock import clock_start

if __name__ == "__main__":
    clock_start()
    from celery.__main__ import main

    sys.argv[0] = "celery"
    sys.exit(main())
