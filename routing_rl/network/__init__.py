"""The modular network: layer specs, batched routed layers and the routed multi-task network."""

from routing_rl.network.factory import build_network
from routing_rl.network.model import RoutingNetwork
from routing_rl.network.routed_layer import RoutedLayer, dispatch
from routing_rl.network.spec import InputShapeError, LayerSpec, SpecError, build_layer_specs, parse_routed

__all__ = [
    "InputShapeError",
    "LayerSpec",
    "RoutedLayer",
    "RoutingNetwork",
    "SpecError",
    "build_layer_specs",
    "build_network",
    "dispatch",
    "parse_routed",
]
