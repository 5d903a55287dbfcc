"""Text from the data, made inert for the audit's CSV files and report.md.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
in some, a tab or carriage return) as a formula; OWASP's guidance on CSV
injection is to prefix such a cell with a single quote, which the
spreadsheet shows as text. Markdown renders ``![...](...)`` as a remote
image and passes HTML tags through; every string from the data is escaped
for CommonMark before it enters ``report.md``.
"""

import html
import re

# The first characters that make a spreadsheet read a cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A cell that is a plain number is read as that number, never as a formula.
PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
# ASCII punctuation that starts inline Markdown: emphasis, code, links and
# images, tables, strikethrough, and the backslash itself. "<", ">" and "&"
# become character references instead. An underscore between two letters or
# digits (sample_id) can neither open nor close emphasis: it stays as it is.
MARKDOWN_INLINE = re.compile(r"[\\`*\[\]|~]|(?<![^\W_])_|_(?![^\W_])")
# What turns the start of a line into a heading, list item or rule ("*" and
# "_" are escaped everywhere, ">" is a character reference).
MARKDOWN_LINE_START = re.compile(r"^( *)(#|=|[-+](?= |$)|-(?=[- ]*$)|\d+[.)](?= |$))")


def csv_cell(value):
    """``value`` with a leading quote when a spreadsheet would run it.

    Parameters
    ----------
    value : object
        A cell or a column name. Only text is changed; numbers, and text
        that is a plain number (``-1.5``), stay as they are.

    Returns
    -------
    object

    Examples
    --------
    >>> csv_cell("=HYPERLINK(1)"), csv_cell("-2.5"), csv_cell(-2.5)
    ("'=HYPERLINK(1)", '-2.5', -2.5)
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    if PLAIN_NUMBER.match(value):
        return value
    return "'" + value


def _is_text(series):
    from pandas.api.types import is_numeric_dtype

    return not is_numeric_dtype(series) and series.dtype.kind not in "mM"


def csv_frame(frame):
    """A copy of ``frame`` whose text cells and column names are inert.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        The same shape and order; numeric and date columns unchanged.
    """
    safe = frame.copy()
    safe.columns = [csv_cell(name) for name in frame.columns]
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        if _is_text(column):
            safe.isetitem(i, column.astype(object).map(csv_cell))
    return safe


def write_csv(frame, path):
    """Write ``frame`` as CSV with its text made inert (:func:`csv_frame`).

    Lines end in CRLF (RFC 4180), so that a cell holding a lone carriage
    return is quoted too: with LF line ends, Python's CSV writer leaves it
    bare and a reader starts a new row there.
    """
    csv_frame(frame).to_csv(path, index=False, lineterminator="\r\n")


def markdown_text(value, *, block=False):
    """``value`` as CommonMark text that renders as itself and nothing more.

    Line breaks become spaces (a blank line would end the paragraph or the
    table), ``<``, ``>`` and ``&`` become character references (no tag,
    autolink or entity from the data), and the punctuation of inline
    Markdown is backslash-escaped (no image, link, emphasis, code span or
    table cell).

    Parameters
    ----------
    value : object
        Converted with ``str``.
    block : bool, default=False
        Also escape what would start a heading, list or rule at the start of
        a line (for text that begins a list item; table cells are inline).

    Returns
    -------
    str

    Examples
    --------
    >>> print(markdown_text("![x](http://a.invalid/p.png) <b>|</b> _a_b_"))
    !\\[x\\](http://a.invalid/p.png) &lt;b&gt;\\|&lt;/b&gt; \\_a_b\\_
    >>> print(markdown_text("# 1. two", block=True), markdown_text("--x", block=True))
    \\# 1. two --x
    """
    text = re.sub(r"[\t\n\v\f\r]+", " ", str(value))
    text = MARKDOWN_INLINE.sub(r"\\\g<0>", html.escape(text, quote=False))
    if block:
        text = MARKDOWN_LINE_START.sub(_escape_line_start, text, count=1)
    return text


def _escape_line_start(match):
    spaces, marker = match.groups()
    if marker[-1] in ".)":  # an ordered list: "1." -> "1\."
        return spaces + marker[:-1] + "\\" + marker[-1]
    return spaces + "\\" + marker


def markdown_code(text):
    """``text`` as a CommonMark code span, shown verbatim on one line.

    The fence is one backtick longer than the longest run of backticks in
    ``text``; line breaks are written as ``\\n`` (a blank line would close
    the span and let what follows be read as Markdown or HTML).

    Examples
    --------
    >>> print(markdown_code("a `b`\\n\\n<img>"))
    `` a `b`\\n\\n<img> ``
    """
    text = re.sub(r"\r\n|\r|\n", r"\\n", str(text))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    if longest or not text.strip(" "):
        text = f" {text} "
    return f"{fence}{text}{fence}"
