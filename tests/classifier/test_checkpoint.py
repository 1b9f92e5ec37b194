import pickle

import pytest
import torch

from classifier.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from classifier.data import Preprocessing
from classifier.models import ArchitectureConfig, build_model, load_encoder_weights
from classifier.schema import resolve_schema

SMALL = (8, 16, 32)
RAN = []


class Payload:
    """Unpickling this runs code: a checkpoint must never be able to do that."""

    def __reduce__(self):
        return (RAN.append, ("unpickled",))


def _checkpoint_file(tmp_path, **extra):
    schema = resolve_schema("gz2")
    model = build_model(ArchitectureConfig(n_outputs=schema.n_answers, widths=SMALL))
    path = save_checkpoint(Checkpoint(schema=schema, architecture=model.config, preprocessing=Preprocessing(),
                                      model_state=model.state_dict()), tmp_path / "c.pt")
    if extra:
        blob = torch.load(path, weights_only=True)
        torch.save({**blob, **extra}, path)
    return path


def test_plain_checkpoint_round_trips(tmp_path):
    loaded = load_checkpoint(_checkpoint_file(tmp_path))
    assert loaded.schema.name == "gz2" and loaded.build_model().config.widths == SMALL


def test_checkpoint_with_a_pickled_object_is_refused_without_running_it(tmp_path):
    path = _checkpoint_file(tmp_path, metrics={"note": Payload()})
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):
        load_encoder_weights(build_model(ArchitectureConfig(n_outputs=2, widths=SMALL)), path)
    assert RAN == []
