"""The report's stylesheet, inline in every file (no external URL: the report opens offline, from a mail).

Widths are the point: at 1,280 px every table fits; at 390 px (a phone) the
page never scrolls sideways, and a table too wide for the screen scrolls
inside its own box (``.table-wrap``); the response tables (time to
acknowledge, time to resolve) turn into one card per policy instead
(``table.cards``), so their key figures need no scrolling at all. ``tests/test_digest_browser.py``
measures both in a real Chromium.
"""

from __future__ import annotations

CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--card:#f6f8fa;--bad:#b42318;--warn:#9a6700;--good:#1e7b34;
--accent:#0b5cad}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;color:var(--fg);background:#fff;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:1080px;margin:0 auto;padding:20px 16px 40px}
header h1{margin:0 0 4px;font-size:1.6em;line-height:1.2}
.sub{color:var(--muted);margin:0}
nav{margin:14px 0;display:flex;flex-wrap:wrap;gap:6px 14px}
nav a{color:var(--accent)}
h2{font-size:1.35em;margin:32px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--fg)}
h3{font-size:1.08em;margin:24px 0 8px}
h4{font-size:1em;margin:0 0 6px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:10px 0}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.kpi .label{color:var(--muted);font-size:.85em}
.kpi .value{font-size:1.55em;font-weight:650;line-height:1.25}
.kpi .vs{font-size:.85em;color:var(--muted)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:18px}
.charts>*{min-width:0}
.charts.trend{grid-template-columns:minmax(0,1fr)}
.charts.trend figure{max-width:640px}
figure{margin:0}
figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block;max-height:340px}
svg.chart .grid{stroke:#e4e7eb;stroke-width:1}
svg.chart .axis{font-size:13px;fill:#57606a}
svg.chart .value{font-size:12px;fill:#1b1f24}
svg.chart g.dim{opacity:.5}
svg.chart .seg{font-size:12px;font-weight:650;fill:#1b1f24;paint-order:stroke;stroke:#fff;stroke-width:3px;
stroke-linejoin:round}
.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:.88em}
.legend li{display:flex;align-items:center;gap:6px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px}
.swatch.line{width:22px;height:0;border-radius:0}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:.92em;font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:var(--card);font-weight:600;white-space:normal;vertical-align:bottom}
th:first-child,td:first-child{text-align:left}
td.text,th.text{text-align:left;white-space:normal}
tr.current td{font-weight:650}
tr.baseline td{color:var(--muted);font-style:italic}
.incident{border:1px solid var(--line);border-left:5px solid var(--muted);border-radius:6px;padding:10px 12px;
margin:10px 0}
.incident.sev-critical{border-left-color:var(--bad)}
.incident.sev-warning{border-left-color:#d4a72c}
.badge{display:inline-block;font-size:.78em;font-weight:650;text-transform:uppercase;letter-spacing:.03em;
padding:1px 6px;border-radius:4px;background:var(--card);border:1px solid var(--line);vertical-align:1px}
.badge.sev-critical{background:#ffebe9;border-color:#ff8182;color:var(--bad)}
.badge.sev-warning{background:#fff8c5;border-color:#d4a72c;color:var(--warn)}
.incident blockquote{margin:6px 0 8px;padding:6px 10px;background:var(--card);border-radius:4px}
.incident blockquote p{margin:0 0 4px}
.incident .meta{color:var(--muted);font-size:.88em}
.incident dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}
.incident dt{color:var(--muted)}
.incident dd{margin:0}
details.day{border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:0 12px}
details.day>summary{cursor:pointer;padding:8px 0;font-weight:600}
details.day[open]>summary{border-bottom:1px solid var(--line)}
ol.top{padding-left:1.6em;margin:6px 0}
ol.top li{margin:5px 0}
.ok{color:var(--good);font-weight:600}
.late{color:var(--bad);font-weight:600}
.muted{color:var(--muted)}
.note{font-size:.9em;color:var(--muted)}
footer{margin-top:36px;border-top:1px solid var(--line);padding-top:10px;font-size:.88em;color:var(--muted)}
footer dt{font-weight:600;color:var(--fg)}
footer dd{margin:0 0 8px}
a{color:var(--accent);overflow-wrap:anywhere}
@media (max-width:600px){
body{font-size:15px}
main{padding:12px 10px 28px}
header h1{font-size:1.3em}
.kpis{grid-template-columns:repeat(2,minmax(0,1fr))}
.kpi .value{font-size:1.3em}
.charts,.charts.trend{grid-template-columns:minmax(0,1fr)}
th,td{padding:4px 6px}
.incident dl{grid-template-columns:1fr}
table.cards thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table.cards,table.cards tbody,table.cards tr{display:block;width:100%}
table.cards tr{border:1px solid var(--line);border-radius:6px;margin:0 0 8px;padding:4px 8px}
table.cards td{display:flex;justify-content:space-between;gap:12px;border:0;padding:2px 0;white-space:normal;
text-align:right}
table.cards td:first-child{font-weight:650;text-align:left;border-bottom:1px solid var(--line);margin-bottom:2px}
table.cards td:not(:first-child)::before{content:attr(data-label);color:var(--muted);text-align:left;
font-weight:400}
.incident dt{margin-top:4px}
svg.chart .axis{font-size:15px}
svg.chart .value{font-size:14px}
svg.chart .seg{font-size:14px}
}
@media print{
@page{size:A4;margin:14mm}
body{font-size:10pt;color:#000}
main{max-width:none;padding:0}
nav{display:none}
h2{break-before:page;break-after:avoid}
h3,h4{break-after:avoid}
section.overview h2,footer h2{break-before:auto}
.kpi,figure,.incident,tr{break-inside:avoid}
.kpi{background:none}
.table-wrap{overflow:visible}
.charts.trend{grid-template-columns:minmax(0,1fr)}
.charts.trend figure{max-width:65%}
th{background:none}
a{color:inherit;text-decoration:none}
a.post::after{content:" (" attr(href) ")";font-size:8pt;color:#555;overflow-wrap:anywhere}
}
""".strip()
