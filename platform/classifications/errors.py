"""Domain errors of submitting classifications and serving the queue. The API maps each to a
status code and a JSON body naming the field and the reason."""

from core.errors import DomainError


class InvalidRequest(DomainError):
    """The request body does not have the documented shape; names the first field at fault."""

    @classmethod
    def from_serializer_errors(cls, errors: dict) -> "DomainError":
        field, reasons = next(iter(errors.items()))
        reason = str(reasons[0]) if isinstance(reasons, list) and reasons else str(reasons)
        if field == "annotations":
            return InvalidAnnotations(f"annotations: {reason}", field=field, detail={"errors": errors, "error": {
                "message": reason, "rule": "missing", "index": None, "question": None, "answer": None}})
        return cls(f"{field}: {reason}", field=field, detail={"errors": errors})


class InvalidAnnotations(DomainError):
    code = "invalid_annotations"


class UnknownGalaxy(DomainError):
    status_code = 404
    code = "unknown_galaxy"


class UnknownWorkflow(DomainError):
    status_code = 404
    code = "unknown_workflow"


class WorkflowInactive(DomainError):
    status_code = 409
    code = "workflow_inactive"


class SubjectRetired(DomainError):
    status_code = 409
    code = "subject_retired"


class IdempotencyConflict(DomainError):
    status_code = 409
    code = "idempotency_key_reused"


class VolunteerRequired(DomainError):
    """An anonymous vote without a server-issued identity: refused, so it cannot count as a new volunteer."""

    status_code = 403
    code = "volunteer_identity_required"


class UnknownShadowBan(DomainError):
    """Lifting a ban that does not exist."""

    status_code = 404
    code = "not_shadow_banned"
