"""The report's HTML page: one self-contained file (charts as base64 PNG data URIs, tables as HTML,
inline CSS, no script, nothing fetched from the network), so it can be mailed or opened offline.

page(title, intro, sections, charts, footer) -> str; sections are (heading, HTML) pairs, charts
(title, png bytes, how to read it) triples. Every text that comes from a result file (tags, host names) is escaped.
"""

import base64
import html

from bench.table import printable

GENERATOR = "costbench report"  # also marks the page as costbench's own, so a re-run may replace it

CSS = """
body { font: 16px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1d232a; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 40px 0 8px; border-bottom: 1px solid #d8dde3; padding-bottom: 4px; }
p.meta { color: #5a6470; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 4px; width: 100%; }
th, td { padding: 5px 8px; border-bottom: 1px solid #e3e7eb; text-align: left; vertical-align: top; }
th { background: #f3f5f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.word { white-space: nowrap; }
td.prose { min-width: 24em; }
p.note { font-size: 13px; margin: 2px 0; }
.scroll { overflow-x: auto; }
figure { margin: 12px 0 0; }
figure img { width: 100%; height: auto; border: 1px solid #e3e7eb; }
.how { background: #f6f8fa; border-left: 4px solid #4a90d9; padding: 8px 14px; margin: 8px 0; font-size: 15px; }
.how b { color: #2b5d8f; }
nav a { margin-right: 14px; }
footer { color: #5a6470; font-size: 13px; margin-top: 48px; }
"""


def escape(text: str) -> str:
    """HTML-escaped, control characters as visible escapes (a tag's ESC or newline from a result file)."""
    return html.escape(printable(text))


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def _kind(text: str) -> str | None:
    """"word" for a cell that must not break (a GPU "A100-SXM-80GB" broke over lines), "prose" for a
    note given room to read (it was squeezed to one word a line beside many columns)."""
    if " " not in text:
        return "word" if len(text) <= 24 else None
    return "prose" if len(text) > 40 else None


def table_html(rows: list[dict], columns: list[tuple[str, str]], numeric=()) -> str:
    """rows of already formatted cells; columns: (key, header); keys in `numeric` right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for _, h in columns)
    body = []
    for r in rows:
        cells = []
        for key, _ in columns:
            value = r.get(key)
            text = "-" if value is None or value != value else str(value)
            cls = ' class="num"' if key in numeric else f' class="{_kind(text)}"' if _kind(text) else ""
            cells.append(f"<td{cls}>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def page(title: str, intro: str, sections: list[tuple[str, str]], charts: list[tuple[str, bytes, str]],
         footer: str) -> str:
    """sections: (heading, HTML) before the charts; charts: (title, PNG bytes, how-to-read text)."""
    nav = " ".join(f'<a href="#{_anchor(t)}">{escape(t)}</a>' for t, _ in sections + [(c[0], "") for c in charts])
    parts = [f"<h1>{escape(title)}</h1>", f'<p class="meta">{escape(intro)}</p>', f"<nav>{nav}</nav>"]
    for heading, body in sections:
        parts.append(f'<h2 id="{_anchor(heading)}">{escape(heading)}</h2>{body}')
    for chart_title, png, how in charts:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<h2 id="{_anchor(chart_title)}">{escape(chart_title)}</h2>'
                     f'<p class="how"><b>How to read this:</b> {escape(how)}</p>'
                     f'<figure><img alt="{escape(chart_title)}" src="data:image/png;base64,{data}"></figure>')
    parts.append(f"<footer>{escape(footer)}</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"generator\" content=\"{GENERATOR}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>\n")
