"""Evaluation of trained segmentation models (`.keras` or SavedModel) on a data split."""

from tf_nas_seg.evaluation.evaluator import evaluate_source
from tf_nas_seg.evaluation.metrics import confusion_metric, scores_from_confusion
from tf_nas_seg.evaluation.predictor import Predictor, PredictorError, load_predictor

__all__ = ["Predictor", "PredictorError", "confusion_metric", "evaluate_source",
           "load_predictor", "scores_from_confusion"]
