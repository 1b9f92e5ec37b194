"""The platform's error type: every app's domain errors subclass it, and the API turns each
into a status code and a JSON body naming the code, the field and the reason."""


class DomainError(Exception):
    """Base of every platform error the API reports."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, detail: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.detail = detail or {}

    def as_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        body.update(self.detail)
        return body


class BadQueryParameter(DomainError):
    code = "invalid_parameter"
