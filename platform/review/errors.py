"""Domain errors of the workbench; the API answers each with its status, code, field and reason."""

from core.errors import DomainError


class InvalidExpertAnnotations(DomainError):
    code = "invalid_annotations"


class UnknownFlag(DomainError):
    status_code = 404
    code = "unknown_flag"


class FlagAlreadyResolved(DomainError):
    status_code = 409
    code = "flag_already_resolved"


class RetirementUnchanged(DomainError):
    """Retiring a retired galaxy (or un-retiring an active one) would record an override that
    changed nothing."""

    status_code = 409
    code = "retirement_unchanged"


class ReasonRequired(DomainError):
    code = "reason_required"


class NoActiveModel(DomainError):
    status_code = 409
    code = "no_active_model"


class InvalidQuery(DomainError):
    code = "invalid_parameter"


class ScoresPending(DomainError):
    """The active model's review scores are still being computed by a worker."""

    status_code = 409
    code = "review_scores_pending"


class BrokerUnavailable(DomainError):
    """The task could not be sent in time (core.broker); nothing was queued."""

    status_code = 503
    code = "broker_unavailable"


class UnknownVolunteer(DomainError):
    status_code = 404
    code = "unknown_volunteer"


class UnknownModelVersion(DomainError):
    status_code = 404
    code = "unknown_model_version"


class AlreadyActive(DomainError):
    status_code = 409
    code = "model_version_already_active"


class NotEmbedded(DomainError):
    """The active model's encoder stored no embedding for this galaxy (predicted before
    embeddings were kept, or added since): it has no neighbours to show."""

    status_code = 409
    code = "no_embedding"


class ExportNotReady(DomainError):
    status_code = 409
    code = "export_not_ready"
