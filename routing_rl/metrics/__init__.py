"""Evaluation metrics: ranking (MAP@K) for multi-label tasks, accuracy, mean squared error, and
the perplexity and task similarity of routing policies."""

from routing_rl.metrics.classification import accuracy
from routing_rl.metrics.ranking import MapAccumulator, MapAtK, average_precision_at_k, map_at_k
from routing_rl.metrics.regression import mse, per_task_mse
from routing_rl.metrics.routing import cosine_similarity_matrix, perplexity

__all__ = [
    "MapAccumulator",
    "MapAtK",
    "accuracy",
    "average_precision_at_k",
    "cosine_similarity_matrix",
    "map_at_k",
    "mse",
    "per_task_mse",
    "perplexity",
]
