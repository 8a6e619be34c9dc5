"""The console's inline SVG charts (`webapp.console.charts`), read back as XML."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from webapp.console.charts import bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"
DAYS = ["03-10", "03-11", "03-12"]


def parse(chart) -> ET.Element:
    return ET.fromstring(str(chart))


def series_shapes(root: ET.Element, number: int, shape: str) -> list[ET.Element]:
    (group,) = root.findall(f"{SVG}g[@class='series-{number}']")
    return group.findall(f"{SVG}{shape}")


def tips(shapes: list[ET.Element]) -> list[str]:
    return [shape.find(f"{SVG}title").text for shape in shapes]


def test_bar_heights_are_proportional_to_the_values_and_each_bar_tells_its_value():
    root = parse(bar_chart(DAYS, [("in", [1, 2, 4]), ("out", [3, 0, 1.25])], title="Messages"))

    heights = [float(bar.get("height")) for bar in series_shapes(root, 0, "rect")]
    assert [height / heights[0] for height in heights] == pytest.approx([1, 2, 4], abs=0.01)
    assert tips(series_shapes(root, 1, "rect")) == ["03-10 · out: 3", "03-11 · out: 0", "03-12 · out: 1.25"]


def test_stacked_bars_stand_on_one_another():
    root = parse(bar_chart(DAYS, [("answered", [2, 1, 0]), ("unknown", [1, 1, 3])], stacked=True, title="Answers"))

    lower, upper = series_shapes(root, 0, "rect"), series_shapes(root, 1, "rect")
    for below, above in zip(lower, upper):
        assert float(above.get("y")) + float(above.get("height")) == pytest.approx(float(below.get("y")), abs=0.02)
        assert above.get("x") == below.get("x")


def test_none_is_a_gap_in_bars_and_lines():
    bars = parse(bar_chart(DAYS, [("in", [1, None, 3])], title="Messages"))
    lines = parse(line_chart(DAYS + ["03-13"], [("p50", [1.5, None, 2, 2.5])], title="Reply time", unit="s"))

    assert tips(series_shapes(bars, 0, "rect")) == ["03-10 · in: 1", "03-12 · in: 3"]
    assert tips(series_shapes(lines, 0, "circle")) == ["03-10 · p50: 1.5 s", "03-12 · p50: 2 s",
                                                       "03-13 · p50: 2.5 s"]
    (line,) = series_shapes(lines, 0, "polyline")  # the lone point before the gap draws no line
    assert len(line.get("points").split()) == 2


def test_text_from_users_is_escaped():
    evil = "<script>alert(1)</script>"
    root = parse(bar_chart([evil], [(evil, [1])], title=evil))

    assert not [element for element in root.iter() if element.tag.endswith("script")]
    assert root.get("aria-label") == evil and root.find(f"{SVG}title").text == evil
    assert evil in [text.text for text in root.iter(f"{SVG}text")]


@pytest.mark.parametrize("chart", [bar_chart, line_chart])
def test_all_zero_draws_flat_and_labels_the_axis(chart):
    root = parse(chart(DAYS, [("leads", [0, 0, 0])], title="Leads"))

    shapes = series_shapes(root, 0, "rect" if chart is bar_chart else "circle")
    assert len(shapes) == 3 and all(float(shape.get("height", 0)) == 0 for shape in shapes)
    assert len({shape.get("cy") for shape in shapes}) <= 1
    assert len(root.findall(f"{SVG}line[@class='grid']")) >= 2
    assert "0" in [text.text for text in root.iter(f"{SVG}text")]


@pytest.mark.parametrize(("chart", "legend"), [
    (bar_chart(DAYS, [("in", [1, 2, 3]), ("out", [2, None, 1])], title="Messages"), ["in", "out"]),
    (bar_chart(DAYS, [("up", [1, 2, 3]), ("down", [0, 1, 0])], stacked=True, title="Ratings"), ["up", "down"]),
    (line_chart(DAYS, [("p50", [1, 2, None]), ("p95", [3, 4, 5])], title="Reply time", unit="s"), ["p50", "p95"]),
])
def test_charts_scale_label_their_days_and_style_only_by_class(chart, legend):
    root = parse(chart)

    assert root.get("viewBox") and root.get("width") is None and root.get("height") is None
    assert root.get("role") == "img" and root.get("aria-label") == root.find(f"{SVG}title").text
    assert not [element for element in root.iter() if "style" in element.attrib or element.tag == f"{SVG}style"]
    texts = [text.text for text in root.iter(f"{SVG}text")]
    assert set(DAYS) <= set(texts) and texts[-2:] == legend
    assert [swatch.get("class") for swatch in root.iter(f"{SVG}rect") if "swatch" in swatch.get("class")] == [
        "swatch series-0", "swatch series-1"]
