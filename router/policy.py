"""From the classifier's probabilities (or a forced name) to a ``Route`` with its reason."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colorize.core.errors import ColorizeError

FORCED = "forced"
CLASSIFIED = "classified"
LOW_CONFIDENCE = "low confidence"
MISSING_EXPERT = "missing expert"
# Fallback reasons name their target: "low confidence → general".
REASONS = (FORCED, CLASSIFIED, LOW_CONFIDENCE, MISSING_EXPERT)


class UnknownExpertError(ColorizeError, ValueError):
    """A forced expert name that no weights exist for."""

    exit_code = 2  # a usage error: the command line, a file named on it or the set-up


class NoFallbackExpertError(ColorizeError, RuntimeError):
    """Routing needs the fallback expert, and it has no weights."""


class RoutingConfigError(ColorizeError, ValueError):
    """A routing configuration holds an unknown key or a value out of range (one line)."""

    exit_code = 2  # a usage error: the command line, a file named on it or the set-up


_ROUTING_KEYS = ("threshold", "fallback", "class_to_expert")


def read_routing(path: Path) -> dict[str, Any]:
    """A user's routing file, parsed (not yet checked: see ``merge_routing``). Whatever keeps
    it from being read is a ``RoutingConfigError`` naming the file."""
    import tomllib

    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RoutingConfigError(f"{path}: not valid TOML ({error})") from None
    except RecursionError:  # tomllib parses nested arrays and tables by recursion
        raise RoutingConfigError(f"{path}: not valid TOML (nested too deeply)") from None
    except OSError as error:
        raise RoutingConfigError(f"{path}: cannot read it ({error.strerror or error})") from None


def merge_routing(
    base: Mapping[str, Any], override: Mapping[str, Any], source: str, experts: Collection[str] | None = None
) -> dict[str, Any]:
    """``override`` (a user's routing.toml, read from ``source``) checked, then merged into
    ``base``: a ``[class_to_expert]`` table changes the classes it names and keeps the rest.

    With ``experts`` (the installed names), an expert the user's file names must be one of
    them: a typo would otherwise send every such photo to the fallback, quietly.
    """
    for key, value in override.items():
        if key not in _ROUTING_KEYS:
            raise RoutingConfigError(f"{source}: unknown key {key!r} (known: {', '.join(_ROUTING_KEYS)})")
    _check_routing(override, source)
    if experts is not None:
        named = {f"[class_to_expert] {k}": v for k, v in override.get("class_to_expert", {}).items()}
        if "fallback" in override:
            named["fallback"] = override["fallback"]
        for key, name in named.items():
            if name not in experts:
                raise RoutingConfigError(
                    f"{source}: {key} = {name!r}: no expert of that name is installed (installed: "
                    f"{', '.join(sorted(experts))})"
                )
    merged = {**base, **override}
    merged["class_to_expert"] = {**base.get("class_to_expert", {}), **override.get("class_to_expert", {})}
    return merged


def _check_routing(config: Mapping[str, Any], source: str) -> None:
    threshold = config.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise RoutingConfigError(f"{source}: threshold must be a number from 0 to 1, got {threshold!r}")
    fallback = config.get("fallback", "general")
    if not isinstance(fallback, str) or not fallback:
        raise RoutingConfigError(f"{source}: fallback must be an expert name, got {fallback!r}")
    table = config.get("class_to_expert", {})
    if not isinstance(table, Mapping) or not all(isinstance(v, str) and v for v in table.values()):
        raise RoutingConfigError(f"{source}: [class_to_expert] must map each class to an expert name, got {table!r}")


@dataclass(frozen=True)
class RoutingPolicy:
    """``threshold``: below this top-class probability, go to ``fallback``.

    ``class_to_expert`` maps classifier labels to expert names (identity when absent).
    """

    threshold: float = 0.5
    fallback: str = "general"
    class_to_expert: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], threshold: float | None = None) -> "RoutingPolicy":
        _check_routing(config, "routing configuration")
        return cls(
            threshold=float(config.get("threshold", 0.5) if threshold is None else threshold),
            fallback=str(config.get("fallback", "general")),
            class_to_expert=dict(config.get("class_to_expert", {})),
        )

    def expert_for(self, label: str) -> str:
        return self.class_to_expert.get(label, label)


@dataclass(frozen=True)
class Route:
    expert: str
    confidence: float | None  # the classifier's probability for the chosen expert's class
    probabilities: Mapping[str, float]
    reason: str
    # The classifier's most likely class, which a fallback overruled (None without a classifier).
    top_class: str | None = None

    @property
    def fell_back(self) -> bool:
        return self.reason.startswith((LOW_CONFIDENCE, MISSING_EXPERT))

    @property
    def ascii_reason(self) -> str:
        """The reason in plain ASCII ("low confidence -> general"), for TIFF tags and HTTP headers."""
        return self.reason.replace("→", "->")

    def explanation(self) -> str:
        """The reason, and for a fallback the class it overruled with that class's probability:
        "low confidence → general (landscape 32%)" (general's own probability says nothing)."""
        if self.fell_back and self.top_class is not None:
            return f"{self.reason} ({self.top_class} {self.probabilities[self.top_class]:.0%})"
        return self.reason

    def describe(self) -> str:
        """One line for people: "people (91%), classified"; "general, low confidence → general (landscape 32%)"."""
        confidence = "" if self.fell_back or self.confidence is None else f" ({self.confidence:.0%})"
        return f"{self.expert}{confidence}, {self.explanation()}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "expert": self.expert,
            "confidence": self.confidence,
            "probabilities": dict(self.probabilities),
            "reason": self.reason,
            "top_class": self.top_class,
        }


def check_forced(name: str, available: Collection[str]) -> None:
    if name not in available:
        raise UnknownExpertError(
            f"unknown expert {name!r}; choose one of: {', '.join(sorted(available)) or '(none installed)'}"
        )


def route(
    probabilities: Mapping[str, float],
    available: Collection[str],
    policy: RoutingPolicy,
    forced: str | None = None,
) -> Route:
    """Choose an expert. ``available``: names of experts with weights."""
    if forced is not None:
        check_forced(forced, available)
        top = max(probabilities, key=probabilities.__getitem__) if probabilities else None
        return Route(forced, _probability_of(forced, probabilities, policy), probabilities, FORCED, top)
    if not probabilities:
        raise ValueError("route() needs class probabilities when no expert is forced")
    label = max(probabilities, key=probabilities.__getitem__)
    confidence = probabilities[label]
    expert = policy.expert_for(label)
    if confidence >= policy.threshold and expert in available:
        return Route(expert, confidence, probabilities, CLASSIFIED, label)
    reason = LOW_CONFIDENCE if confidence < policy.threshold else MISSING_EXPERT
    if expert == policy.fallback and expert in available:
        # Unsure, but the top class is the fallback anyway: still a plain classification.
        return Route(expert, confidence, probabilities, CLASSIFIED, label)
    if policy.fallback not in available:
        raise NoFallbackExpertError(
            f"no weights for the fallback expert {policy.fallback!r} (needed for: {reason}); "
            f"installed: {', '.join(sorted(available)) or 'none'}"
        )
    fallback_confidence = _probability_of(policy.fallback, probabilities, policy)
    return Route(policy.fallback, fallback_confidence, probabilities, f"{reason} → {policy.fallback}", label)


def _probability_of(expert: str, probabilities: Mapping[str, float], policy: RoutingPolicy) -> float | None:
    """The classifier's probability that ``expert`` is the one for the photo: the summed
    probabilities of every class the table sends to it (the shipped table sends two classes to
    the general expert); None when no class leads to it."""
    labels = [label for label in probabilities if policy.expert_for(label) == expert]
    return sum(probabilities[label] for label in labels) if labels else None
