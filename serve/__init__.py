"""Serving with ONNX Runtime (torch-free): :class:`Predictor` reads a bundle and predicts."""

from hashembed.serve.predictor import Prediction, Predictor

__all__ = ["Predictor", "Prediction"]
