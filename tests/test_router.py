"""router: every reason, the threshold, forced and unknown experts, missing fallback."""

import pytest

from colorize.router import NoFallbackExpertError, RoutingPolicy, UnknownExpertError, route

ALL = ["general", "landscape", "people"]
POLICY = RoutingPolicy(threshold=0.6)


def test_confident_photo_goes_to_its_class_expert():
    r = route({"landscape": 0.9, "people": 0.05, "general": 0.05}, ALL, POLICY)
    assert (r.expert, r.reason, r.confidence) == ("landscape", "classified", 0.9)


def test_unsure_photo_falls_back_to_general():
    r = route({"landscape": 0.5, "people": 0.3, "general": 0.2}, ALL, POLICY)
    assert (r.expert, r.reason) == ("general", "low confidence → general")
    assert r.confidence == 0.2  # the classifier's probability for the chosen expert


def test_a_fallback_reports_the_probability_of_every_class_its_expert_serves():
    # As shipped: landscapes go to the general expert, so its probability is landscape's plus general's.
    policy = RoutingPolicy(threshold=0.6, class_to_expert={"landscape": "general"})
    r = route({"landscape": 0.10, "people": 0.45, "general": 0.45}, ALL, policy)
    assert (r.expert, r.reason) == ("general", "low confidence → general")
    assert r.confidence == pytest.approx(0.55), r.confidence
    forced = route({"landscape": 0.10, "people": 0.45, "general": 0.45}, ALL, policy, forced="general")
    assert forced.confidence == pytest.approx(0.55), forced.confidence


def test_threshold_is_inclusive():
    r = route({"landscape": 0.6, "people": 0.3, "general": 0.1}, ALL, POLICY)
    assert r.reason == "classified"


def test_missing_expert_falls_back_to_general():
    r = route({"landscape": 0.1, "people": 0.85, "general": 0.05}, ["general", "landscape"], POLICY)
    assert (r.expert, r.reason) == ("general", "missing expert → general")


def test_forced_expert_wins_and_reports_its_probability():
    probabilities = {"landscape": 0.9, "people": 0.05, "general": 0.05}
    r = route(probabilities, ALL, POLICY, forced="people")
    assert (r.expert, r.reason, r.confidence) == ("people", "forced", 0.05)


def test_forced_expert_without_probabilities_has_no_confidence():
    r = route({}, ALL, POLICY, forced="general")
    assert (r.expert, r.confidence, r.reason) == ("general", None, "forced")


def test_unknown_forced_expert_lists_valid_names():
    with pytest.raises(UnknownExpertError, match="general, landscape, people"):
        route({}, ALL, POLICY, forced="portraits")


def test_no_general_expert_is_a_clear_error():
    with pytest.raises(NoFallbackExpertError, match="general"):
        route({"landscape": 0.4, "people": 0.35, "general": 0.25}, ["landscape", "people"], POLICY)


def test_confident_route_needs_no_fallback():
    r = route({"landscape": 0.9, "people": 0.05, "general": 0.05}, ["landscape"], POLICY)
    assert r.expert == "landscape"


def test_class_mapped_to_user_expert():
    policy = RoutingPolicy(threshold=0.5, class_to_expert={"people": "portraits-1920s"})
    r = route({"landscape": 0.1, "people": 0.8, "general": 0.1}, ALL + ["portraits-1920s"], policy)
    assert (r.expert, r.reason) == ("portraits-1920s", "classified")


def test_policy_from_config_and_override():
    config = {"threshold": 0.7, "fallback": "general", "class_to_expert": {"people": "people"}}
    assert RoutingPolicy.from_config(config).threshold == 0.7
    assert RoutingPolicy.from_config(config, threshold=0.2).threshold == 0.2


def test_route_serialises_for_reports():
    r = route({"landscape": 0.9, "people": 0.05, "general": 0.05}, ALL, POLICY)
    assert r.as_dict() == {
        "expert": "landscape",
        "confidence": 0.9,
        "probabilities": {"landscape": 0.9, "people": 0.05, "general": 0.05},
        "reason": "classified",
        "top_class": "landscape",
    }


def test_a_fallback_names_the_class_it_overruled_and_that_class_s_probability():
    r = route({"landscape": 0.32, "people": 0.30, "general": 0.38}, ALL, RoutingPolicy(threshold=0.5))
    assert (r.expert, r.top_class) == ("general", "general")  # the top class is the fallback itself
    r = route({"landscape": 0.45, "people": 0.30, "general": 0.25}, ALL, RoutingPolicy(threshold=0.5))
    assert (r.expert, r.reason, r.top_class) == ("general", "low confidence → general", "landscape")
    assert r.describe() == "general, low confidence → general (landscape 45%)"
    assert r.as_dict()["top_class"] == "landscape"
    r = route({"landscape": 0.9, "people": 0.05, "general": 0.05}, ALL, RoutingPolicy())
    assert r.describe() == "landscape (90%), classified"
