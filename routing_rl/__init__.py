"""routing-rl: routing networks for multi-task learning.

Data flows one way: a task suite (``routing_rl.data``) yields multi-task splits, its task family
(``routing_rl.data.families``) says how they are scored, the routing environments
(``routing_rl.envs``) turn a mini-batch into a batch of routing episodes, a router
(``routing_rl.agents``) picks function blocks, the routed network (``routing_rl.network``) applies
them, or a multi-task model (``routing_rl.models``) predicts every task at once, and the one trainer
(``routing_rl.training``) updates weights and router and writes the logs.

Importing the package registers every built-in suite, router, model and Gymnasium id.
"""

__version__ = "0.2.0"

import routing_rl.agents  # noqa: E402,F401  (registers the routers)
import routing_rl.data  # noqa: E402,F401  (registers the task suites)
import routing_rl.envs  # noqa: E402,F401  (registers the Gymnasium ids)
import routing_rl.models  # noqa: E402,F401  (registers the multi-task models)
