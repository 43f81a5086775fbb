"""Log filters for the settings' LOGGING (the core is handed nothing from config: config names these)."""

import logging


class ExpectedRefusalFilter(logging.Filter):
    """A 4xx answer (403 refused by a role, 404) is expected, not a fault: one line, no traceback.
    Server errors (5xx) keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
