"""Write a run's plots as PNG files and one self-contained HTML page (tables + embedded plots).

For people who do not use Jupyter: the page opens in any browser, offline. Files are written
atomically through Beam's FileSystems, so the report can go next to a run on gs:// too.
"""
from __future__ import annotations

import base64
import html
import io

import pandas as pd

from curate.io import files as fs
from curate.stats import plots
from curate.stats.collect import RunStats
from curate.stats.tables import format_value, tables

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}
td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
img{max-width:100%}h2{margin-top:2em;border-bottom:2px solid #2e7d32}
.note{background:#fff8e1;padding:.5em 1em}"""


def png_bytes(fig, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def render(rs: RunStats, top: int = plots.TOP) -> dict[str, bytes]:
    """Every plot the run has data for, as PNG bytes by name (figures closed once rendered)."""
    import matplotlib.pyplot as plt

    rendered = {}
    for name, fig in plots.figures(rs, top).items():
        rendered[name] = png_bytes(fig)
        plt.close(fig)
    return rendered


def write_pngs(rs: RunStats, folder: str, rendered: dict[str, bytes] | None = None) -> list[str]:
    """One PNG per plot; returns the paths written."""
    written = []
    for name, data in (rendered if rendered is not None else render(rs)).items():
        path = fs.join(folder, f"{name}.png")
        fs.write_bytes(path, data)
        written.append(path)
    return written


def _table_html(frame: pd.DataFrame, max_rows: int = 200) -> str:
    shown = frame.head(max_rows)  # numbers formatted as in the text report
    formatted = pd.DataFrame({c: [format_value(v) for v in shown[c]] for c in shown.columns})
    return formatted.to_html(index=False, border=0)


def html_report(rs: RunStats, top: int = 20, rendered: dict[str, bytes] | None = None) -> str:
    named = tables(rs, top)
    rendered = rendered if rendered is not None else render(rs)
    title = f"curate {rs.stats.get('pipeline', '')} run: {rs.run.path}"
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style><h1>{html.escape(title)}</h1>"]
    for note in rs.notes:
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    for name, data in rendered.items():
        encoded = base64.b64encode(data).decode("ascii")
        parts.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2><img alt='{html.escape(name)}' "
                     f"src='data:image/png;base64,{encoded}'>")
    parts.append("<h2>tables</h2>")
    for name, frame in named.items():
        parts.append(f"<h3>{html.escape(name.replace('_', ' '))}</h3>{_table_html(frame)}")
    return "\n".join(parts)


def write_html(rs: RunStats, path: str, top: int = 20, rendered: dict[str, bytes] | None = None) -> str:
    fs.write_bytes(path, html_report(rs, top, rendered).encode("utf-8"))
    return path
