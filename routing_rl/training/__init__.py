"""Training: run configuration, the trainer loop, metrics, TensorBoard logging and atomic I/O."""

from routing_rl.training.config import RunConfig
from routing_rl.training.run_dir import RunDirectory, RunExistsError
from routing_rl.training.trainer import Callbacks, Trainer, TrainingDiverged, load_results

__all__ = ["Callbacks", "RunConfig", "RunDirectory", "RunExistsError", "Trainer", "TrainingDiverged", "load_results"]
