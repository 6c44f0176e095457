"""The ground floor: the contracts every other floor speaks in (:mod:`routing_rl.core.contracts`)
and the objectives that price a routing episode (:mod:`routing_rl.core.objectives`). It imports
nothing of the package but :mod:`routing_rl.metrics`' pure functions."""
