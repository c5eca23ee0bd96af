"""Charts of the operator pages, drawn on the server as SVG with pygal (no JavaScript, nothing
from the Internet): the month's traffic per day, and its running total against the budget.

The SVG is served as its own response and shown with ``<img>``, so its inline style is allowed
by a policy of its own (:data:`SVG_CSP`) and its script never runs; the page prints the same
numbers as a table beside it.
"""

from __future__ import annotations

import calendar
import sys

import pygal
from pygal.style import Style

# pygal appends a legacy import hook for its map plugins to sys.meta_path (it raises an
# ImportWarning on every later import that reaches it); no map is used here: take it out.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"
MB = 1_000_000          # the unit of the charts' axes: MB = 10^6 bytes, as everywhere
STYLE = Style(font_family="'Noto Sans CJK SC', 'WenQuanYi Micro Hei', sans-serif",
              background="white", plot_background="white",
              colors=("#2b6cb0", "#dd8a2e", "#b83232", "#3c8d5a", "#7b5ea7", "#8c8c8c",
                      "#c9b458"))


def month_days(month: str) -> list[str]:
    """``YYYY-MM-DD`` of every day of ``month`` (YYYY-MM)."""
    year, mon = (int(x) for x in month.split("-"))
    return [f"{month}-{d:02d}" for d in range(1, calendar.monthrange(year, mon)[1] + 1)]


def _chart(kind: type, title: str, labels: list[str]) -> pygal.Graph:
    chart = kind(js=[], style=STYLE, width=760, height=300, explicit_size=True, title=title,
                 show_minor_x_labels=False, x_labels_major_every=5, truncate_legend=-1,
                 legend_at_bottom=True, print_values=False, include_x_axis=True)
    chart.x_labels = labels
    return chart


def daily_svg(month: str, days: list[tuple[str, int, int]], texts: dict[str, str]) -> str:
    """Sent and received MB of each day of ``month``, stacked."""
    by_day = {d: (up, down) for d, up, down in days}
    dates = month_days(month)
    chart = _chart(pygal.StackedBar, texts["title"], [d[-2:].lstrip("0") for d in dates])
    chart.add(texts["sent"], [round(by_day.get(d, (0, 0))[0] / MB, 3) for d in dates])
    chart.add(texts["received"], [round(by_day.get(d, (0, 0))[1] / MB, 3) for d in dates])
    return chart.render(is_unicode=True)


def total_svg(month: str, days: list[tuple[str, int, int]], budget: int | None,
              upto: str, texts: dict[str, str]) -> str:
    """The month's running total (MB) up to ``upto`` (today), and the budget as a line."""
    by_day = {d: up + down for d, up, down in days}
    dates = month_days(month)
    total, points = 0, []
    for d in dates:
        total += by_day.get(d, 0)
        points.append(round(total / MB, 3) if d <= upto else None)
    chart = _chart(pygal.Line, texts["title"], [d[-2:].lstrip("0") for d in dates])
    chart.add(texts["used"], points, dots_size=3, stroke_style={"width": 3})
    if budget is not None:
        chart.add(texts["budget"], [round(budget / MB, 3)] * len(dates), show_dots=False,
                  stroke_style={"width": 3, "dasharray": "6, 4"})
    return chart.render(is_unicode=True)


MAX_SERIES = 6      # uses shown apart in the chart by use; the rest are summed as "other"


def protocols_svg(month: str, rows: list[tuple[str, str, int]], texts: dict[str, str]) -> str:
    """MB per day of each use (``rows``: day, use label, bytes), stacked; the largest uses
    apart, the rest as ``texts["other"]``."""
    totals: dict[str, int] = {}
    for _, use, n in rows:
        totals[use] = totals.get(use, 0) + n
    top = sorted(totals, key=lambda u: -totals[u])[:MAX_SERIES]
    per: dict[tuple[str, str], int] = {}
    for d, use, n in rows:
        key = (d, use if use in top else texts["other"])
        per[key] = per.get(key, 0) + n
    dates = month_days(month)
    chart = _chart(pygal.StackedBar, texts["title"], [d[-2:].lstrip("0") for d in dates])
    for use in top + ([texts["other"]] if len(totals) > len(top) else []):
        chart.add(use, [round(per.get((d, use), 0) / MB, 3) for d in dates])
    return chart.render(is_unicode=True)
