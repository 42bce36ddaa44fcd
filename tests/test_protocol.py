"""scripts/protocol.py: sources weigh equally within a category, categories by the fixed weights,
and a change is adopted only if it wins overall and loses at most 2 % on every source."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("protocol", Path(__file__).resolve().parents[1] / "scripts/protocol.py")
protocol = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(protocol)


def _scores(delta_e: float) -> dict:
    return {"psnr": 25.0, "delta_e": delta_e, "colorfulness": 10.0, "colorfulness_truth": 20.0, "ssim": 0.9}


def _report(cells: dict[tuple[str, str], dict[str, float]], photos: int = 20) -> dict:
    """An eval report: ``photos`` photos per (category, source), each with these ΔE per mode."""
    images = []
    for (category, source), modes in cells.items():
        for i in range(photos):
            image = {"path": f"x/{category}/{source}--{i}.jpg", "category": category, "status": "ok"}
            image.update({mode: _scores(value) for mode, value in modes.items()})
            images.append(image)
    return {"modes": [m for m in next(iter(cells.values())) if m != "gray"], "images": images}


def test_sources_weigh_alike_within_a_category_and_categories_by_their_weights():
    report = _report(
        {
            ("landscape", "a"): {"gray": 10, "new": 8},  # 0.8
            ("people", "b"): {"gray": 10, "new": 5},  # 0.5
            ("people", "c"): {"gray": 20, "new": 20},  # 1.0: people's macro is 0.75, not pooled 0.833
            ("general", "d"): {"gray": 10, "new": 9},  # 0.9
        }
    )
    result = protocol.macro(report, "new")
    assert result["people"]["delta_e"] == pytest.approx(0.75)
    assert result["overall"]["delta_e"] == pytest.approx(0.17 * 0.8 + 0.50 * 0.75 + 0.33 * 0.9)


def test_a_source_with_too_few_photos_is_left_out_of_the_means():
    report = _report({("people", "b"): {"gray": 10, "new": 5}})
    report["images"] += _report({("people", "tiny"): {"gray": 10, "new": 30}}, photos=3)["images"]
    assert protocol.macro(report, "new")["people"]["delta_e"] == pytest.approx(0.5)


def test_a_change_that_wins_overall_but_loses_more_than_2_percent_on_a_source_is_not_adopted():
    cells = {
        ("landscape", "a"): {"gray": 10, "old": 8.0, "new": 7.0},
        ("people", "b"): {"gray": 10, "old": 5.0, "new": 4.0},
        ("general", "c"): {"gray": 10, "old": 9.0, "new": 9.2},  # +2.2 %
    }
    adopted, reasons = protocol.adoption(_report(cells), "new", "old")
    assert not adopted and any(r.startswith("c: +2.2%") for r in reasons), reasons
    cells["general", "c"]["new"] = 9.15  # +1.7 %: within the rule
    adopted, reasons = protocol.adoption(_report(cells), "new", "old")
    assert adopted, reasons


def test_a_models_record_holds_its_own_scores_and_the_routed_tools_on_both_roles():
    cells = {
        ("landscape", "a"): {"gray": 10, "auto": 8, "general": 9},
        ("people", "b"): {"gray": 10, "auto": 5, "general": 6},
    }
    choosing, test = _report(cells), _report({("general", "t"): {"gray": 10, "auto": 11, "general": 12}})
    for report in (choosing, test):
        report["settings"] = {"data_dir": "held-out", "models": {"general": {"sha256": "abc"}}}
    record = protocol.protocol_record(choosing, test, "general")
    assert record["mode"] == "general" and record["choosing"]["sources"] == ["a", "b"]
    assert record["choosing"]["by_category_and_source"]["people"]["b"] == {
        "photos": 20, "delta_e": 0.6, "psnr": 0.0, "colour": 0.5
    }  # fmt: skip
    # landscape 0.9 and people 0.6, weighed 0.17 and 0.50; the routed tool's beside it
    assert record["choosing"]["macro"]["overall"]["delta_e"] == pytest.approx((0.17 * 0.9 + 0.5 * 0.6) / 0.67, abs=1e-4)
    assert record["choosing"]["routed_macro"]["overall"]["delta_e"] == pytest.approx(
        (0.17 * 0.8 + 0.5 * 0.5) / 0.67, abs=1e-4
    )
    assert record["test"]["macro"]["overall"]["delta_e"] == pytest.approx(1.2) and record["test"]["sources"] == ["t"]
    assert "routed_macro" not in protocol.protocol_record(choosing, test, "auto")["test"]
