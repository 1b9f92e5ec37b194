"""Domain errors of retraining. They subclass the platform's API error type, so the API
answers with a status code and a JSON body naming the field and the reason."""

from core.errors import DomainError


class RetrainingError(DomainError):
    code = "retraining_error"


class RunAlreadyActive(RetrainingError):
    status_code = 409
    code = "training_run_active"


class RunFinished(RetrainingError):
    status_code = 409
    code = "training_run_finished"


class CannotActivate(RetrainingError):
    status_code = 409
    code = "model_version_not_activatable"


class NotEnoughTrainingData(RetrainingError):
    code = "not_enough_training_data"


class NoEmbeddings(RetrainingError):
    status_code = 409
    code = "no_encoder_embeddings"
