"""The community report as people read it (CSV, HTML with SVG charts drawn here by pygal: no
script, no CDN; the terminal's text is in cli/report.py), the report page, and "my resources"
with the feedback other schools gave (its unread count is in the page header).  The numbers
come from protocol/report.py through node/oversight.py; nothing here computes them.
"""

from __future__ import annotations

import base64
import csv
import io
import sys
from datetime import date, datetime, timedelta, timezone
from typing import Any

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node import oversight
from node.errors import NodeError
from protocol import report as pr

from . import i18n
from .pages import HERE, Web, day

_CHART = dict(js=[], disable_xml_declaration=True, width=720, height=300,
              explicit_size=True, show_legend=True, legend_at_bottom=True, print_values=False,
              truncate_label=-1)


def _pygal() -> Any:
    """pygal, imported when a chart is drawn. Its import adds a finder for map plugins at the
    end of ``sys.meta_path`` that only has the pre-3.4 ``find_module`` API (an ImportWarning
    for every failed optional import anywhere); we use no map plugin, so it is taken out."""
    import pygal
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]
    return pygal


def _svg(chart: Any) -> Markup:
    """A chart as an <img> with a data: URI: the page's CSP allows it, it runs nothing, it
    prints, and the HTML file stands alone."""
    svg = chart.render()
    data = base64.b64encode(svg.encode("utf-8") if isinstance(svg, str) else svg).decode()
    title = chart.config.title or ""
    return Markup(f'<img class="chart" alt="{escape(title)}" '
                  f'src="data:image/svg+xml;base64,{data}">')


def charts(rep: dict[str, Any], t: Any) -> dict[str, Markup]:
    pygal = _pygal()
    months = rep["months"] or ["-"]
    pub = pygal.StackedBar(title=t("rep_chart_pub"), **_CHART)
    pub.x_labels = months
    for key in ("published", "adapted"):
        pub.add(t("rep_" + key), [sum(p[key] for p in rep["publications"] if p["month"] == m)
                                  for m in months])
    fb = pygal.Bar(title=t("rep_chart_feedback"), **_CHART)
    fb.x_labels = months
    for key in ("reports", "used_in_class"):
        fb.add(t("rep_" + key), [sum(p[key] for p in rep["feedback"]["by_month"]
                                     if p["month"] == m) for m in months])
    names = {s["school"]: s["name"] or s["school"][-8:] for s in rep["schools"]}
    reach = pygal.HorizontalBar(title=t("rep_chart_reach"), **_CHART)
    reach.x_labels = [names.get(r["school"], r["school"]) for r in rep["reach"]] or ["-"]
    for key in ("held_by", "adapted_by", "used_by"):
        reach.add(t("rep_" + key), [len(r[key]) for r in rep["reach"]] or [0])
    audit = pygal.Bar(title=t("rep_chart_audit"), **_CHART)
    counts = [a["count"] for a in rep["audit"]["items"]]
    audit.x_labels = ["0", "1", "2", "3+"]
    audit.add(t("rep_resources"), [counts.count(0), counts.count(1), counts.count(2),
                                   sum(c >= 3 for c in counts)])
    return {"pub": _svg(pub), "feedback": _svg(fb), "reach": _svg(reach), "audit": _svg(audit)}


def render_csv(rep: dict[str, Any]) -> str:
    """One table: section, school, month or resource, and the numbers."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["section", "school", "key", "value1", "value2", "value3"])
    for s, h in rep["heads"].items():
        w.writerow(["head", s, h["seq"], h["hash"], "", ""])
    for p in rep["publications"]:
        w.writerow(["publications", p["school"], p["month"], p["published"], p["adapted"], ""])
    for p in rep["feedback"]["by_month"]:
        w.writerow(["feedback", p["school"], p["month"], p["reports"], p["used_in_class"],
                    p["average"]])
    for q in rep["requests"]["items"]:
        w.writerow(["request", q["school"], q["request"], q["opened"], q["answered"] or "",
                    q["subject"]])
    for r in rep["reach"]:
        w.writerow(["reach", r["school"], r["resources"], len(r["held_by"]),
                    len(r["adapted_by"]), len(r["used_by"])])
    for s, row in rep["coverage"]["counts"].items():
        for lv, n in row.items():
            w.writerow(["coverage", "", f"{s}|{lv}", n, "", ""])
    for a in rep["audit"]["items"]:
        w.writerow(["audit", a["school"], a["resource"], a["count"], " ".join(a["holders"]),
                    ""])
    for h in rep["hidden"]:
        w.writerow(["hidden", h["by"], h["resource"], h["time"], h["reason"], ""])
    return buf.getvalue()


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["day"] = day
    return env


def render_standalone(rep: dict[str, Any], lang: str) -> str:
    """The printable report as one HTML file (CLI ``--format html``)."""
    t = i18n.translator(lang)
    body = _env().get_template("_report.html").render(rep=rep, t=t, c=charts(rep, t),
                                                       names=_names(rep), standalone=True)
    return (f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>{escape(t('rep_title'))}</title><style>{_PRINT_CSS}</style>"
            f"</head><body>{body}</body></html>\n")


_PRINT_CSS = ("body{font-family:sans-serif;max-width:60rem;margin:1rem auto}"
              "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .4rem}"
              ".empty{background:#fde2e2}.chart{max-width:100%}")


def _names(rep: dict[str, Any]) -> dict[str, str]:
    return {s["school"]: s["name"] or s["school"] for s in rep["schools"]}


def _day_param(text: str | None, *, end: bool) -> int | None:
    if not text:
        return None
    d = date.fromisoformat(text)
    if end:
        d += timedelta(days=1)
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() * 1000)


async def report_page(request: Request) -> Response:
    """The community report (signed-in teachers and operators); ?format=json for the JSON,
    ?print=1 for the printable view."""
    web: Web = request.app.state.web
    if web.teacher(request) is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    p = request.query_params
    try:
        start = _day_param(p.get("from"), end=False)
        end = _day_param(p.get("to"), end=True)
    except ValueError:
        return web.error(request, 400, "rep_bad_date")
    try:
        rep = oversight.report(web.home, p.get("community") or None, start, end)
    except NodeError as exc:
        return web.error(request, 400, "rep_failed", error=str(exc))
    if p.get("format") == "json":
        return Response(pr.to_json(rep), media_type="application/json")
    t = i18n.translator(web.lang(request))
    return web.render(request, "report.html", rep=rep, c=charts(rep, t), names=_names(rep),
                      printing=p.get("print") == "1", standalone=False,
                      params={"from": p.get("from") or "", "to": p.get("to") or ""})
