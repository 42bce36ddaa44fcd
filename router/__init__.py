"""The routing policy: plain logic from class probabilities to an expert name.

It imports nothing else of colorize; it gets probabilities and the names of the experts
that have weights.
"""

from colorize.router.policy import (
    REASONS,
    NoFallbackExpertError,
    Route,
    RoutingConfigError,
    RoutingPolicy,
    UnknownExpertError,
    merge_routing,
    route,
)

__all__ = [
    "REASONS",
    "NoFallbackExpertError",
    "Route",
    "RoutingConfigError",
    "RoutingPolicy",
    "UnknownExpertError",
    "merge_routing",
    "route",
]
