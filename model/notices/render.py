"""An adverse action notice as a PDF, laid out with fpdf2 from a `NoticeContent`.

fpdf2 is pure Python (no system libraries), and a notice takes milliseconds, so `score.py --notices`
can write thousands. Text that fits Latin-1 (nearly every US notice) uses the PDF's built-in
Helvetica; anything else (a name in another script, curly quotes in a bank's template) is set in
the DejaVu Sans shipped in model/notices/fonts, which covers it. Either way the text is real text:
it can be searched, copied and read aloud, and the tests read it back out of the PDF.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from .content import NoticeContent

FONTS = Path(__file__).with_name("fonts")
MARGIN = 18  # mm, left and right
TOP = 15  # mm, top and bottom (the footer sits in the bottom margin)
BODY = 9.5  # pt
LINE = 4.3  # mm per body line
GREY = (90, 90, 90)
INDENT = 8  # mm, of a numbered item's text


def render_pdf(content: NoticeContent) -> bytes:
    """The notice as the bytes of a one- or two-page US Letter PDF."""
    pdf = _Notice(_font_for(content))
    pdf.set_title(content.title)
    pdf.set_author(content.creditor_name)
    pdf.set_subject(f"Decision {content.decision_id}")
    pdf.set_creator("LoanDesk")
    pdf.footer_text = content.footer
    pdf.add_page()

    pdf.heading(content.creditor_name, 13)
    pdf.plain("\n".join([*content.creditor_address, f"Telephone {content.creditor_phone}"]), grey=True)
    pdf.ln(2)
    pdf.plain("\n".join([f"Date: {content.notice_date}", *content.applicant,
                         f"Application reference: {content.decision_id}"]))
    pdf.ln(2)
    pdf.heading(content.title, 12)
    pdf.plain(f"Action taken: credit denied on {content.decision_date}.")
    pdf.plain(content.action_taken)
    pdf.ln(2)

    pdf.heading(content.reasons_heading, 10.5)
    if content.reasons:
        for k, reason in enumerate(content.reasons, 1):
            pdf.item(f"{k}.", f"{reason.text} (reason code {reason.code})")
    else:
        pdf.plain(content.no_single_reason)
    pdf.ln(2)

    if content.consumer_report is not None:
        report = content.consumer_report
        pdf.heading("Information from a consumer reporting agency", 10.5)
        pdf.plain(report.text)
        pdf.plain(f"{report.agency_name}\n{report.agency_address} · telephone {report.agency_phone}",
                  bold_first=True)
        pdf.ln(2)
    if content.credit_score is not None:
        score = content.credit_score
        pdf.heading("Your credit score", 10.5)
        pdf.plain(score.text)
        pdf.plain(f"Your credit score: {score.score}    Date: {score.date}    Provided by: {score.provider}\n"
                  f"Scores range from a low of {score.low} to a high of {score.high}.")
        pdf.plain("Key factors that adversely affected your credit score:", bold_first=True)
        if score.key_factors:
            for k, factor in enumerate(score.key_factors, 1):
                pdf.item(f"{k}.", factor)
        else:
            pdf.plain(score.no_key_factors)
        pdf.plain(score.questions)
        pdf.ln(2)

    pdf.plain(content.contact)
    pdf.ln(2)
    pdf.plain(content.ecoa, size=8.5)
    return bytes(pdf.output())


def _font_for(content: NoticeContent) -> str:
    """Helvetica when every character is Latin-1, else the bundled DejaVu Sans."""
    try:
        _all_text(content).encode("latin-1")
    except UnicodeEncodeError:
        return "DejaVu"
    return "Helvetica"


def _all_text(content: NoticeContent) -> str:
    parts: list[str] = [content.creditor_name, *content.creditor_address, content.creditor_phone,
                        *content.applicant, content.title, content.action_taken, content.reasons_heading,
                        content.no_single_reason, content.contact, content.ecoa, content.footer,
                        *(r.text for r in content.reasons), *(r.code for r in content.reasons)]
    if content.consumer_report is not None:
        r = content.consumer_report
        parts += [r.text, r.agency_name, r.agency_address, r.agency_phone]
    if content.credit_score is not None:
        s = content.credit_score
        parts += [s.text, s.score, s.low, s.high, s.provider, s.no_key_factors, s.questions, *s.key_factors]
    return "\n".join(parts) + "·"  # the footer's separator is Latin-1 too


class _Notice(FPDF):
    """A page with the notice's typography: a few helpers so `render_pdf` reads like the letter."""

    footer_text = ""

    def __init__(self, family: str):
        super().__init__(format="Letter", unit="mm")
        self.family = family
        if family == "DejaVu":
            self.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
            self.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.set_margins(MARGIN, TOP, MARGIN)
        self.set_auto_page_break(True, margin=TOP)

    def heading(self, text: str, size: float) -> None:
        self.set_font(self.family, "B", size)
        self.set_text_color(0, 0, 0)
        self.block(text, size * 0.5)
        self.ln(1)

    def plain(self, text: str, *, grey: bool = False, size: float = BODY, bold_first: bool = False) -> None:
        self.set_text_color(*(GREY if grey else (0, 0, 0)))
        first, _, rest = text.partition("\n") if bold_first else ("", "", text)
        if bold_first:
            self.set_font(self.family, "B", size)
            self.block(first, LINE * size / BODY)
        if rest:
            self.set_font(self.family, "", size)
            self.block(rest, LINE * size / BODY)
        self.ln(1)

    def item(self, mark: str, text: str) -> None:
        """A numbered line with a hanging indent."""
        self.set_font(self.family, "", BODY)
        self.set_text_color(0, 0, 0)
        self.cell(INDENT, LINE, mark)
        self.block(text, LINE, indent=INDENT)
        self.ln(0.5)

    def block(self, text: str, height: float, indent: float = 0.0) -> None:
        """Left-aligned lines, wrapped at spaces. fpdf2's multi_cell measures every line again for
        each character added to it, which made a notice take ten times as long as this."""
        width = self.w - self.l_margin - self.r_margin - indent
        for line in self._wrap(text, width):
            self.set_x(self.l_margin + indent)
            self.cell(width, height, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def _wrap(self, text: str, width: float) -> list[str]:
        font, points = self.current_font, self.font_size_pt
        assert font is not None, "a font is set before any text"

        def measure(word: str) -> float:  # the font's own metrics, without fpdf2's per-call text shaping
            return font.get_text_width(word, points, None)[1] / self.k

        space = measure(" ")
        lines = []
        for paragraph in text.split("\n"):
            words: list[str] = []
            used = 0.0
            for word in _split_long(paragraph.split(" "), measure, width):
                size = measure(word)
                if words and used + space + size > width:
                    lines.append(" ".join(words))
                    words, used = [word], size
                else:
                    used = size if not words else used + space + size
                    words.append(word)
            lines.append(" ".join(words))
        return lines

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 7)
        self.set_text_color(*GREY)
        self.cell(0, 4, f"{self.footer_text} · page {self.page_no()} of {{nb}}", align="C")


def _split_long(words: list[str], measure, width: float) -> list[str]:
    """Words wider than a line (a long URL or id) cut into pieces that fit."""
    out = []
    for word in words:
        while measure(word) > width and len(word) > 1:
            lo, hi = 1, len(word) - 1  # the longest prefix that fits, by bisection
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if measure(word[:mid]) <= width else (lo, mid - 1)
            out.append(word[:lo])
            word = word[lo:]
        out.append(word)
    return out
