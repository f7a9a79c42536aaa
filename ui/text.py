"""Text from a user's file, shown as text: never as markdown, HTML or a chart's markup.

A model trained on someone's CSV brings its column names and category values into labels,
messages, reasons and chart titles. Streamlit renders markdown in `st.markdown`, `st.caption`,
alerts, widget labels and help; plotly renders a little HTML (links among it) in titles, axes and
hover text. A column named `![px](http://host/pixel)` would make every officer's browser fetch
that address. Everything from the user's data goes through `md` (or `md_code`) before it meets
markdown, and through `plot` before it meets plotly.
"""

from __future__ import annotations

import html
import re

# CommonMark lets any ASCII punctuation be escaped with a backslash; these are the ones that can
# start markup inside a line of Streamlit's markdown (links, images, emphasis, code, HTML,
# entities, tables, math, colour and icon directives) ...
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#!|~$:&@])")
# ... these only at the start of a line (lists; quotes and headings are covered above) ...
_LINE_START = re.compile(r"^(\d+)([.)])(?=\s|$)|^([-+=])(?=\s|$)")
# ... and the "www." that would become a link by itself (http:// is broken by its escaped colon).
_WWW = re.compile(r"(?i)\b(www)\.")


def md(text: object) -> str:
    """`text` escaped for Streamlit markdown: it shows exactly as written, on one line."""
    flat = _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))
    flat = _WWW.sub(r"\1\\.", flat)
    return _LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", flat)


def md_code(text: object) -> str:
    """`text` as inline code (monospace), whatever backticks it holds."""
    flat = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def plot(text: object) -> str:
    """`text` for a plotly title, axis, tick or hover label: its HTML subset escaped."""
    return html.escape(str(text), quote=False)
