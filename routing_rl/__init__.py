"""routing-rl: routing networks for multi-task learning.

Data flows one way: a task suite (``routing_rl.data``) yields multi-task splits, the routing
environments (``routing_rl.envs``) turn a mini-batch into a batch of routing episodes, a router
(``routing_rl.agents``) picks function blocks, the routed network (``routing_rl.network``) applies
them, and the trainer (``routing_rl.training``) updates weights and router and writes the logs.
"""

__version__ = "0.1.0"
