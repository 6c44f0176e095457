"""Training: one run configuration, one trainer loop over task families and learners, results and I/O."""

from routing_rl.training.setup.composition import Composition, compose
from routing_rl.training.setup.config import RunConfig
from routing_rl.training.records.io import CheckpointError
from routing_rl.training.records.results import ResultsError, load_results
from routing_rl.training.records.run_dir import RunDirectory, RunDirError, RunExistsError
from routing_rl.training.loop.trainer import Callbacks, Trainer, TrainingDiverged

__all__ = [
    "Callbacks",
    "CheckpointError",
    "Composition",
    "ResultsError",
    "RunConfig",
    "RunDirError",
    "RunDirectory",
    "RunExistsError",
    "Trainer",
    "TrainingDiverged",
    "compose",
    "load_results",
]
