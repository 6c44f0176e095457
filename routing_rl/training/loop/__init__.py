"""The training loop: the trainer, the learners it drives (made by one factory), their optimizers, gradient clipping and deterministic kernels."""
