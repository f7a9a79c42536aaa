"""Text from a user's data meets markdown and plotly as text (ui/text.py); the browser test checks the pages."""

from __future__ import annotations

import re

from ui.text import WORD_JOINER, md, md_code, md_table, plot


def shown(markdown: str) -> str:
    """What a reader sees: escapes undone, the invisible word joiners left out."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")


def test_markup_in_a_name_is_escaped_and_reads_as_written():
    for text in ("![px](http://127.0.0.1:9/pixel)", "[click](javascript:alert(1))", "<img src=x onerror=1>",
                 "**bold** _it_ `code` ~~gone~~", ":red[alarm] :material/home:", "# heading", "| a | b |",
                 "1. first", "- item", "from $42,000 to $58,000", "see www.example.com or a@b.example"):
        escaped = md(text)
        assert shown(escaped) == text
        assert not re.search(r"(?<!\\)[\[\]<>`*~|#]", escaped), escaped  # every markup character escaped
        assert not re.search(r"(?i)http\\?:|www\.|\w\\?@", escaped), escaped  # nothing left to autolink


def test_ordinary_labels_are_left_readable():
    for text in ("Age (years)", "Loan amount ($)", "loan_approval_model", "scikit-learn 1.9.1", "-5", "bad.csv"):
        assert md(text) == text


def test_code_plot_and_table_text():
    assert md_code("a`b") == "``a`b``"
    assert plot("<a href='x'>y</a>") == "&lt;a href='x'&gt;y&lt;/a&gt;"
    table = md_table({"![c](u)": ["[x](y)"]})
    assert list(table.columns) == ["!\\[c\\](u)"] and table.iloc[0, 0] == "\\[x\\](y)"
