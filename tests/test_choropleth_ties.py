"""Quantile classes and tied values (review11 D14, review14 #7; docs/evaluation-maps.md): a tied value keeps a class
of its own (the regions at 100 % are not lumped with the 81 % ones), and a class the ties leave empty is merged
away — the legend shows no "100.0%(0)" beside "100.0%(304)" and says the classes were merged. Every region is
coloured by the class the legend counts it in."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from maps.choropleth import NO_DATA_COLOUR, UNGRADED_COLOUR, choropleth, classify, classify_grades, format_percent


def test_tied_quantile_classes_are_merged_and_the_legend_says_so() -> None:
    # 60 regions at 100 %, 40 spread over 50–99 %: the 2nd, 3rd and 4th quartiles are all 100 %.
    values = np.r_[np.ones(60), np.linspace(0.5, 0.99, 40)]
    classes = classify(values, "quantiles", 4, fmt=format_percent)
    assert classes.k == 3
    assert classes.counts == (25, 15, 60)  # the regions at 100 % in the top class (verify11 N2), none empty
    assert classes.labels == ("50.0% – 80.2%", "81.4% – 99.0%", "100.0%")  # each the range of its values
    assert classes.subtitle == "分位数分级(3 级,因数值重复由 4 级合并)"
    assert classes.note == "因数值重复由 4 级合并为 3 级"
    assert [(row.label, row.count) for row in classes.legend()] == [
        ("50.0% – 80.2%", 25),
        ("81.4% – 99.0%", 15),
        ("100.0%", 60),
    ]
    assert np.bincount(classes.index_of(values), minlength=3).tolist() == [25, 15, 60]


def test_the_best_tied_regions_take_the_best_class_not_the_worst() -> None:
    # 679 grids closed every case, one 87.5 %, one 50 %: judged "higher is better", the 679 are the best colour.
    values = np.r_[np.full(679, 1.0), 0.875, 0.5]
    classes = classify(values, "quantiles", 4, fmt=format_percent, direction="higher")
    assert classes.counts == (2, 679)  # three distinct values: three quantile classes, the tied empty one merged
    assert classes.labels == ("50.0% – 87.5%", "100.0%")  # was "50.0% – 100.0%" beside "100.0%"
    assert classes.index_of([1.0, 0.875, 0.5]).tolist() == [1, 0, 0]
    assert classes.colours_of([1.0])[0] == classes.colours[-1] != classes.colours_of([0.875])[0]


def test_ties_at_the_minimum_keep_their_own_first_class() -> None:
    values = np.r_[np.full(60, 0.5), np.linspace(0.6, 1.0, 40)]
    classes = classify(values, "quantiles", 4, fmt=format_percent)
    assert [(row.label, row.count) for row in classes.legend()] == [
        ("50.0%", 60),
        ("60.0% – 74.4%", 15),
        ("75.4% – 100.0%", 25),
    ]
    assert classes.note == "因数值重复由 4 级合并为 3 级"


def test_the_map_body_of_the_review14_case_shows_no_empty_class() -> None:
    """As in review14 #7 (按期处置率 by 三级网格, 5 quantile classes): 149 / 144 / 83 regions below 100 %, 304 at
    100 % and 4 without cases. Before: "84.2% – 100.0%(104) · 100.0%(0) · 100.0%(304) · 无数据 no data(4)"."""
    values = np.r_[
        np.linspace(0.0, 0.75, 149), np.linspace(0.7501, 0.857, 144), np.linspace(0.8571, 0.99, 83), np.ones(304)
    ]
    values = np.r_[values, [np.nan] * 4]
    regions = gpd.GeoDataFrame(
        {"code": [f"{i:03d}" for i in range(values.size)], "name": "格", "on_time_disposal_rate": values},
        geometry=[shapely.box(i, 0, i + 1, 1) for i in range(values.size)],
        crs=4490,
    )
    body = choropleth(regions, "on_time_disposal_rate", scheme="quantiles", k=5)
    assert [(row["label"], row["count"]) for row in body["legend"]] == [
        ("0.0% – 68.4%", 136),
        ("68.9% – 84.1%", 136),
        ("84.2% – 99.0%", 104),
        ("100.0%", 304),
        ("无数据", 4),
    ]
    assert body["k"] == 4 and body["note"] == "因数值重复由 5 级合并为 4 级"
    assert body["subtitle"] == "分位数分级(4 级,因数值重复由 5 级合并)"
    colour = {row["class"]: row["colour"] for row in body["legend"]}
    assert colour[None] == NO_DATA_COLOUR
    counted: dict[int | None, int] = {}
    for f in body["features"]["features"]:
        assert f["properties"]["colour"] == colour[f["properties"]["class"]]  # coloured as the legend shows it
        counted[f["properties"]["class"]] = counted.get(f["properties"]["class"], 0) + 1
    assert counted == {row["class"]: row["count"] for row in body["legend"]}


def test_untied_quantiles_are_mapclassifys_and_nothing_is_merged() -> None:
    import mapclassify

    values = np.random.default_rng(1).random(50)
    classes = classify(values, "quantiles", 5)
    assert np.allclose(classes.edges[1:], mapclassify.Quantiles(values, k=5).bins)
    assert classes.note is None and classes.subtitle == "分位数分级(5 级)"


def test_fewer_distinct_values_than_classes_still_lower_k() -> None:
    assert classify([0.2, 0.2, 0.9, 0.9], "quantiles", 5).k == 2


@pytest.mark.parametrize("scheme", ["equal_interval", "natural_breaks"])
def test_other_schemes_are_not_merged(scheme: str) -> None:
    # equal intervals keep an empty class: its width is the point of the scheme
    classes = classify([0.0, 0.1, 0.2, 0.9, 1.0], scheme, 3)
    assert classes.note is None and classes.k == 3
    if scheme == "equal_interval":
        assert classes.counts == (3, 0, 2)


def test_a_class_label_is_the_range_of_its_values_so_counts_do_not_overlap() -> None:
    """review17 #8: cases per unit grid, most grids without any — the classes were labelled "0" and "0 – 6"."""
    values = np.r_[np.zeros(30954), np.repeat([1, 2, 3, 4, 5, 6], [4000, 2000, 800, 400, 200, 61])]
    classes = classify(values, "quantiles", 5)
    assert classes.labels == ("0", "1 – 6") and classes.counts == (30954, 7461)
    assert [(row.lower, row.upper) for row in classes.legend()] == [(0.0, 0.0), (0.0, 6.0)]  # the class bounds


def test_ungraded_regions_have_their_own_legend_entry_apart_from_no_data() -> None:
    """review21 #4: a region graded 不参评 was counted (and drawn) as 无数据, the entry for regions without cases."""
    grades = ["A", "B", "不参评", None, "B", "不参评", None, None]
    scores = [95.0, 80.0, np.nan, np.nan, 78.0, np.nan, np.nan, np.nan]
    classes = classify_grades(grades)
    assert (classes.counts, classes.ungraded, classes.no_data) == ((1, 2, 0, 0, 0), 2, 3)
    assert classes.index_of(grades).tolist() == [0, 1, -2, -1, 1, -2, -1, -1]
    assert UNGRADED_COLOUR != NO_DATA_COLOUR
    regions = gpd.GeoDataFrame(
        {"code": [f"{i:03d}" for i in range(8)], "name": "格", "score": scores, "grade": grades},
        geometry=[shapely.box(i, 0, i + 1, 1) for i in range(8)],
        crs=4490,
    )
    for column in ("grade", "score"):
        body = choropleth(regions, column, scheme="quantiles", k=2, properties=("code", "grade"))
        tail = [(row["class"], row["label"], row["colour"], row["count"]) for row in body["legend"]][-2:]
        assert tail == [(None, "不参评", UNGRADED_COLOUR, 2), (None, "无数据", NO_DATA_COLOUR, 3)], column
        props = [f["properties"] for f in body["features"]["features"]]
        assert [(p["class"], p["colour"]) for p in props if p["grade"] == "不参评"] == [(None, UNGRADED_COLOUR)] * 2
        assert [p["colour"] for p in props if p["grade"] is None] == [NO_DATA_COLOUR] * 3
        assert [p["value_label"] for p in props if p["grade"] == "不参评"] == ["不参评"] * 2
    assert sum(row["count"] for row in body["legend"]) == 8


def test_a_legend_shows_its_numbers_with_one_precision() -> None:
    """review30 gap 7: "70 – 80.76" beside "85.10 – 87.50": the scores of one legend read alike."""
    scores = np.array([70.0, 75.5, 80.76, 83.33, 85.0, 85.1, 87.5, 90.0])
    classes = classify(scores, "equal_interval", 4)
    assert classes.labels == ("70.00", "75.50", "80.76 – 85.00", "85.10 – 90.00")  # was "85" and "90"
    counts = classify(np.array([0.0, 1, 2, 6, 9]), "equal_interval", 3)
    assert counts.labels == ("0 – 2", "6", "9")  # whole numbers stay whole
