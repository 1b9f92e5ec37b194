"""Images given as encoded bytes instead of file paths, for callers that read them from object
storage: decoded by the same ``data.load_image`` as files, so training and prediction see
identical pixels whichever way an image arrived."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

from classifier.data import LabelledCatalog, count_matrix, load_images
from classifier.predict import Predictions, Predictor, mc_concentrations
from classifier.schema import Schema


class EncodedImage(io.BytesIO):
    """A JPEG/PNG/... in memory, named by where it was read from. PIL's ``Image.open`` seeks
    to the start of a file object, so one object can be decoded again (lazy datasets, resumed
    epochs); ``str()`` is the name, so a decoding error names the stored file."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name

    def __str__(self) -> str:
        return self.name


def encoded_catalog(frame: pd.DataFrame, images: Sequence[EncodedImage], schema: Schema) -> LabelledCatalog:
    """A training catalog whose images are in memory: ``frame`` holds ``id_str`` and the
    count columns (validated as ``read_catalog`` does), ``images`` one image per row."""
    if len(images) != len(frame):
        raise ValueError(f"{len(images)} images for {len(frame)} catalog rows")
    frame = frame.reset_index(drop=True)
    return LabelledCatalog(frame=frame, paths=list(images), counts=count_matrix(frame, schema))


def predict_encoded(predictor: Predictor, images: Sequence[EncodedImage], *, n_samples: int, grid_points: int,
                    load_chunk: int = 1024) -> Predictions:
    """``Predictor.predict`` for in-memory images (ids are their names)."""
    chunks = [mc_concentrations(predictor.model, load_images(images[start:start + load_chunk], predictor.preprocessing),
                                predictor.preprocessing, n_samples, predictor.device)
              for start in range(0, len(images), load_chunk)]
    concentrations = (np.concatenate(chunks) if chunks
                      else np.zeros((0, n_samples, predictor.schema.n_answers), dtype=np.float32))
    return Predictions.from_concentrations([image.name for image in images], concentrations, predictor.schema,
                                           grid_points=grid_points)
