"""RFM scores and segment rules: quintiles, ties, rule validation, shipped rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retain.config import ConfigError, SegmentRules, load_segments
from retain.features.segments import (
    DEFAULT_SEGMENT_RULES,
    quintile_score,
    rfm_scores,
    rfm_segments,
)

SEGMENTS_YAML = Path(__file__).resolve().parents[1] / "configs" / "segments.yaml"


def test_distinct_values_fill_each_quintile_equally():
    rng = np.random.default_rng(0)
    values = rng.permutation(100).astype(float)
    score = quintile_score(values)
    assert np.bincount(score, minlength=6)[1:].tolist() == [20] * 5
    # the score is monotone in the value
    order = np.argsort(values)
    assert np.all(np.diff(score[order]) >= 0)
    assert score[values == 99][0] == 5 and score[values == 0][0] == 1
    reversed_score = quintile_score(values, higher_is_better=False)
    np.testing.assert_array_equal(reversed_score, 6 - score)


def test_ties_get_equal_scores_independent_of_order():
    values = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 3], dtype=float)
    score = quintile_score(values)
    # 6 zeros: nobody strictly below -> 1; the ones have 6 of 10 below -> 1 + floor(3) = 4
    assert score.tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    perm = np.random.default_rng(1).permutation(len(values))
    np.testing.assert_array_equal(quintile_score(values[perm]), score[perm])


def test_rfm_scores_use_days_since_last_purchase_reversed():
    summary = pd.DataFrame(
        {
            "frequency": [0, 1, 2, 3, 4],
            "recency_weeks": [0.0, 1.0, 2.0, 3.0, 4.0],
            "tenure_weeks": [10.0, 10.0, 10.0, 10.0, 10.0],  # days since: 70, 63, 56, 49, 42
            "monetary_value": [5.0, 4.0, 3.0, 2.0, 1.0],
        },
        index=pd.Index(list("abcde"), dtype="string", name="customer_id"),
    )
    s = rfm_scores(summary)
    assert s["r_score"].tolist() == [1, 2, 3, 4, 5]
    assert s["f_score"].tolist() == [1, 2, 3, 4, 5]
    assert s["m_score"].tolist() == [5, 4, 3, 2, 1]
    # with days_since_last_purchase and total_spend present, those are used
    s2 = rfm_scores(
        summary.assign(days_since_last_purchase=[1, 2, 3, 4, 5], total_spend=[1, 2, 3, 4, 5])
    )
    assert s2["r_score"].tolist() == [5, 4, 3, 2, 1]
    assert s2["m_score"].tolist() == [1, 2, 3, 4, 5]


def test_every_score_pair_maps_to_the_documented_segment():
    r, f = np.meshgrid(np.arange(1, 6), np.arange(1, 6), indexing="ij")
    scores = pd.DataFrame({"r_score": r.ravel(), "f_score": f.ravel(), "m_score": 3})
    seg = rfm_segments(scores)["rfm_segment"].to_numpy().reshape(5, 5)
    assert seg[4, 4] == "Champions" and seg[4, 0] == "New" and seg[3, 0] == "Promising"
    assert seg[0, 0] == "Lost" and seg[1, 0] == "Hibernating" and seg[0, 4] == "Can't lose them"
    assert seg[2, 2] == "Need attention" and seg[2, 0] == "About to sleep"
    assert seg[1, 3] == "At risk" and seg[3, 4] == "Loyal" and seg[4, 1] == "Potential loyalist"
    assert len(set(seg.ravel())) == 11


def test_classes_first_match_wins_and_default():
    scores = pd.DataFrame(
        {
            "r_score": [5, 5, 1, 3, 5],
            "f_score": [5, 1, 3, 3, 1],
            "m_score": [5, 2, 5, 3, 5],
        }
    )
    cls = rfm_segments(scores)["rfm_class"].tolist()
    assert cls == ["VIP", "new", "dormant", "regular", "regular"]
    custom = DEFAULT_SEGMENT_RULES.model_copy(
        update={"classes": (DEFAULT_SEGMENT_RULES.classes[1], DEFAULT_SEGMENT_RULES.classes[0])}
    )
    assert rfm_segments(scores.iloc[[0]], custom)["rfm_class"].tolist() == ["VIP"]


def test_shipped_yaml_equals_the_default_rules():
    assert load_segments(SEGMENTS_YAML) == DEFAULT_SEGMENT_RULES


def _rules_dict():
    return yaml.safe_load(SEGMENTS_YAML.read_text())


def _write(tmp_path, data):
    path = tmp_path / "segments.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_uncovered_pair_is_an_error(tmp_path):
    data = _rules_dict()
    del data["segments"]["New"]
    with pytest.raises(ConfigError, match="missing: R5F1"):
        load_segments(_write(tmp_path, data))


def test_pair_covered_twice_is_an_error(tmp_path):
    data = _rules_dict()
    data["segments"]["Champions"] = [{"r": [4, 5], "f": [4, 5]}]
    with pytest.raises(ConfigError, match=r"twice: R4F4 \(Champions & Loyal\)"):
        load_segments(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ({"r": [0, 2], "f": [1, 1]}, "1 <= low <= high <= 5"),
        ({"r": [3, 2], "f": [1, 1]}, "1 <= low <= high <= 5"),
        ({"r": [1, 1], "f": [1, 1], "m": [1, 5]}, "unknown key"),
    ],
)
def test_invalid_boxes_are_errors(tmp_path, box, message):
    data = _rules_dict()
    data["segments"]["Lost"] = [box]
    with pytest.raises(ConfigError, match=message):
        load_segments(_write(tmp_path, data))


def test_unknown_top_level_key_is_an_error(tmp_path):
    data = _rules_dict()
    data["segmentz"] = {}
    with pytest.raises(ConfigError, match="segmentz: unknown key"):
        load_segments(_write(tmp_path, data))


def test_rules_are_validated_on_construction():
    with pytest.raises(ValueError, match="distinct"):
        SegmentRules.model_validate({**DEFAULT_SEGMENT_RULES.model_dump(), "default_class": "VIP"})


def test_run_config_finds_the_segment_rules_beside_it():
    from retain.config import load_config

    cfg = load_config(SEGMENTS_YAML.parent / "cdnow.yaml")
    assert cfg.segments_path == SEGMENTS_YAML.parent / "segments.yaml"
    assert load_segments(cfg.segments_path) == DEFAULT_SEGMENT_RULES
