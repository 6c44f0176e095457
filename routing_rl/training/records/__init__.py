"""What a run leaves behind: results.json and its machine, the run directory with its one writer, checkpoints and TensorBoard files, all written atomically."""
