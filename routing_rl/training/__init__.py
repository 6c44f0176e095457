"""Training: run configuration, the trainer loop, metrics, TensorBoard logging and atomic I/O."""

from routing_rl.training.config import RunConfig
from routing_rl.training.trainer import Callbacks, RunExistsError, Trainer, TrainingDiverged, load_results

__all__ = ["Callbacks", "RunConfig", "RunExistsError", "Trainer", "TrainingDiverged", "load_results"]
