"""The papers' figures as matplotlib figures, below the trainer: TensorBoard's figures while a run
trains and ``routing-rl report``'s PNG files afterwards draw with the same functions
(:mod:`routing_rl.plots.figures`)."""
