import pytest
from lifetimes import BetaGeoFitter

from retain.features.rfm import rfm_summary


def test_cdnow_sample_summary_reproduces_published_bgnbd(cdnow_sample):
    s = rfm_summary(cdnow_sample, "1997-09-30", "W")
    assert len(s) == 2357
    assert s["frequency"].sum() == 2457
    fit = BetaGeoFitter().fit(s["frequency"], s["recency_weeks"], s["tenure_weeks"])
    # Fader, Hardie & Lee (2005): r=0.243, alpha=4.414, a=0.793, b=2.426
    published = {"r": 0.2426, "alpha": 4.414, "a": 0.7930, "b": 2.426}
    for name, value in published.items():
        assert fit.params_[name] == pytest.approx(value, rel=1e-3), name
