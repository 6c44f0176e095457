"""Multi-task models of the SNR comparison, all outputting ``[B, T, C_max]``.

Importing this package registers every model in ``MultiTaskModel.registry``: ``snr-trans``,
``snr-aver``, ``shared-bottom-mlp``, ``mmoe`` and ``ml-mmoe``. Build one by name with
``MultiTaskModel.build(name, input_dim, labels_per_task, **sizes)``.
"""

from routing_rl.models.base import MultiTaskModel
from routing_rl.models.losses import multitask_loss, per_task_loss
from routing_rl.models.ml_mmoe import MLMMoE
from routing_rl.models.mmoe import MMoE
from routing_rl.models.shared_bottom_mlp import SharedBottomMLP
from routing_rl.models.sizing import match_hidden_size, train_parameter_count
from routing_rl.models.snr_aver import SNRAver
from routing_rl.models.snr_aver_serving import SNRAverServing
from routing_rl.models.snr_trans import SNRTrans
from routing_rl.models.snr_trans_serving import SNRTransServing

__all__ = [
    "MLMMoE",
    "MMoE",
    "MultiTaskModel",
    "SNRAver",
    "SNRAverServing",
    "SNRTrans",
    "SNRTransServing",
    "SharedBottomMLP",
    "match_hidden_size",
    "multitask_loss",
    "per_task_loss",
    "train_parameter_count",
]
