"""A .keras file that would run arbitrary code is refused, by both loaders."""

import keras
import numpy as np
import pytest

from tf_nas_seg.errors import UserError
from tf_nas_seg.evaluation.predictor import Predictor
from tf_nas_seg.export.artifact_runner import load_keras_model


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory):
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)  # arbitrary Python code
    path = tmp_path_factory.mktemp("hostile") / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_the_artifact_loader_refuses_a_lambda_layer(lambda_model):
    with pytest.raises(UserError, match="cannot load .*lambda.keras.*Lambda"):
        load_keras_model(lambda_model)


def test_the_evaluation_predictor_refuses_a_lambda_layer(lambda_model):
    with pytest.raises(UserError, match="cannot load .*lambda.keras.*Lambda"):
        Predictor(str(lambda_model))(np.zeros((1, 8, 8, 3), np.uint8))
