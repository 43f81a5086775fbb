"""Domain errors. Services raise these; the API's one exception handler renders them
(``{"code", "message", ...extra}``), and the admin shows ``message`` to the user."""

from typing import Any


class ApplicationError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra  # e.g. fields={...}, conditions=[...], rows=[...], vials=[...]

    def as_body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


class InvalidInput(ApplicationError):
    """400: input that breaks a rule of one or more fields. ``fields`` maps field -> [messages]."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str = "Invalid input.", *, fields: dict[str, list[str]] | None = None, **extra):
        super().__init__(message, fields=fields or {}, **extra)


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "permission_denied"


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class Conflict(ApplicationError):
    """409: a rule or state conflict; ``conditions`` lists every unmet condition as {code, detail}."""

    status_code = 409
    code = "conflict"


class SigningLocked(ApplicationError):
    status_code = 423
    code = "signing_locked"


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApplicationError):
    status_code = 415
    code = "unsupported_media_type"


def field_error(field: str, problem: str) -> InvalidInput:
    """One field, one problem: ``raise field_error("volume_ml", "must not be negative")``."""
    return InvalidInput(f"{field}: {problem}", fields={field: [problem]})


def from_django_validation_error(exc) -> InvalidInput:
    """Turn a django ValidationError (from full_clean) into InvalidInput naming each field."""
    if hasattr(exc, "error_dict"):
        fields = {name: [str(m) for e in errors for m in e.messages] for name, errors in exc.error_dict.items()}
    else:
        fields = {"non_field_errors": list(exc.messages)}
    summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
    return InvalidInput(summary or "Invalid input.", fields=fields)


def refuse_unknown_fields(values: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """400 naming every key of ``values`` a service does not let its caller set."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise InvalidInput("; ".join(f"{n}: cannot be set here" for n in unknown),
                           fields={n: ["cannot be set here"] for n in unknown})
