"""The ground floor: the contracts every other floor speaks in (:mod:`routing_rl.core.contracts`),
the objectives that price a routing episode (:mod:`routing_rl.core.objectives`) and the derivation of
every random stream of a run (:mod:`routing_rl.core.seeding`). It imports nothing of the package but
:mod:`routing_rl.metrics`' pure functions."""
