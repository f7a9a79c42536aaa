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
# start markup inside a line of Streamlit's markdown (links and images need a "[", so "(", ")"
# and "!" are left as they are; emphasis (an "_" inside a word never makes any), code, HTML,
# entities, tables, colour and icon directives) ...
_MARKDOWN = re.compile(r"([\\`*{}\[\]<>#|~:&@]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")
# ... these only at the start of a line (lists; quotes and headings are covered above) ...
_LINE_START = re.compile(r"^(\d+)([.)])(?=\s|$)|^([-+=])(?=\s|$)")
# ... and what GitHub-flavoured markdown turns into a link by itself (http://, www., name@host),
# escapes or not: an invisible word joiner (U+2060) between its parts keeps it text.
_AUTOLINK = re.compile(r"(?i)\b(https?|ftp|mailto)(?=\\:)|\b(www)(?=\.)|(?<=[\w.+-])(?=\\@)")
WORD_JOINER = "\u2060"


def md(text: object) -> str:
    """`text` escaped for Streamlit markdown: it shows exactly as written, on one line, with no link."""
    flat = _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))
    if flat.count("$") > 1:  # two dollar signs make math ("from $42,000 to $58,000"); one never does
        flat = flat.replace("$", "\\$")
    flat = _AUTOLINK.sub(lambda m: (m[0] or "") + WORD_JOINER, flat)
    return _LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", flat)


def md_code(text: object) -> str:
    """`text` as inline code (monospace), whatever backticks it holds."""
    flat = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def md_table(table):
    """A table for `st.table` (which renders markdown in every cell, header and row label) with all
    its text escaped. Takes what st.table takes: a DataFrame, or a dict of columns."""
    import pandas as pd

    frame = pd.DataFrame(table).copy()
    frame = frame.map(lambda v: md(v) if isinstance(v, str) else v)
    frame.columns = [md(c) for c in frame.columns]
    frame.index = [md(i) if isinstance(i, str) else i for i in frame.index]
    return frame


def plot(text: object) -> str:
    """`text` for a plotly title, axis, tick or hover label: its HTML subset escaped."""
    return html.escape(str(text), quote=False)
