"""Quantile classes keep their number when values tie (review11 D14; docs/evaluation-maps.md): a tied class stays in
the legend with a count of 0 instead of being merged away."""

from __future__ import annotations

import numpy as np

from maps.choropleth import classify, format_percent


def test_tied_quantile_classes_stay_in_the_legend_with_count_0() -> None:
    # 60 regions at 100 %, 40 spread over 50–99 %: the 2nd, 3rd and 4th quartiles are all 100 %.
    values = np.r_[np.ones(60), np.linspace(0.5, 0.99, 40)]
    classes = classify(values, "quantiles", 4, fmt=format_percent)
    assert classes.k == 4
    assert classes.counts == (25, 15, 0, 60)  # the regions at 100 % in the top class (verify11 N2)
    assert classes.labels == ("50.0% – 81.1%", "81.1% – 100.0%", "100.0%", "100.0%")
    assert [row.count for row in classes.legend()] == [25, 15, 0, 60]
    assert np.bincount(classes.index_of(values), minlength=4).tolist() == [25, 15, 0, 60]


def test_the_best_tied_regions_take_the_best_class_not_the_worst() -> None:
    # 679 grids closed every case, one 87.5 %, one 50 %: judged "higher is better", the 679 are the best colour.
    values = np.r_[np.full(679, 1.0), 0.875, 0.5]
    classes = classify(values, "quantiles", 4, fmt=format_percent, direction="higher")
    assert classes.counts == (2, 0, 679)  # three distinct values: three classes, the middle one tied and empty
    assert classes.index_of([1.0, 0.875, 0.5]).tolist() == [2, 0, 0]
    assert classes.colours_of([1.0])[0] == classes.colours[-1] != classes.colours_of([0.875])[0]


def test_untied_quantiles_are_mapclassifys() -> None:
    import mapclassify

    values = np.random.default_rng(1).random(50)
    assert np.allclose(classify(values, "quantiles", 5).edges[1:], mapclassify.Quantiles(values, k=5).bins)


def test_fewer_distinct_values_than_classes_still_lower_k() -> None:
    assert classify([0.2, 0.2, 0.9, 0.9], "quantiles", 5).k == 2
