r"""Math rendered at build time: KaTeX (inside PyKaTeX) turns every formula into HTML.

Markdown finds the math: `pymdownx.arithmatex` in its generic mode leaves every `$...$` as
`<span class="arithmatex">\(...\)</span>` and every `$$...$$` as `<div class="arithmatex">\[...\]</div>`,
and it already knows what is *not* math (code spans, fenced code, an escaped `\$`). `render_math`
then replaces each of those with KaTeX's HTML. A formula KaTeX cannot parse raises `MathError`,
which fails the build: a broken equation never reaches a reader as raw TeX.

The HTML needs KaTeX's stylesheet and fonts, of exactly the KaTeX version inside PyKaTeX; the site
serves them itself (see `hooks.py`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from functools import cache

import pykatex

# The KaTeX inside PyKaTeX 0.1.1; package.json pins the npm package that provides the CSS and fonts.
KATEX_VERSION = "0.16.22"

INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.DOTALL)
BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.DOTALL)
# A display formula written with \begin{...} ... \end{...} keeps its delimiters.
BLOCK_ENVIRONMENT = re.compile(r'<div class="arithmatex">(\\begin\{.*?\\end\{[^}]*\})</div>', re.DOTALL)


NAMED_COLOUR = re.compile(r"(?<![-\w])color:([a-z]+)(?=;)")


class MathError(ValueError):
    """A formula KaTeX cannot render."""


@cache
def render_tex(tex: str, display: bool) -> str:
    """KaTeX's HTML (with MathML for screen readers) for one formula."""
    try:
        # `trust` lets `\htmlData` through: the notation's links between a symbol and its code
        # (KaTeX's strict mode would warn that the extension is not LaTeX: it is meant.)
        extension = {"trust": True, "strict": "ignore"} if "\\htmlData" in tex else {}
        rendered = pykatex.renderToString(tex, displayMode=display, throwOnError=True, output="htmlAndMathml",
                                          **extension)
    except pykatex.ParseError as error:
        raise MathError(f"KaTeX cannot render {'$$' if display else '$'}{tex}{'$$' if display else '$'}: "
                        f"{error}") from None
    # A named colour follows the theme (a darker orange on white, a lighter one on the dark theme).
    rendered = NAMED_COLOUR.sub(r"color:var(--ao-color-\1, \1)", rendered)
    rendered = _exclude_layout_from_search(rendered)
    # A display formula stays out of the search previews, where it would read as a run of glyphs.
    return f'<div class="ao-math" data-search-exclude>{rendered}</div>' if display else rendered


SPAN_TAG = re.compile(r"<span\b|</span>")


def _exclude_layout_from_search(rendered: str) -> str:
    """
    Keep one copy of a formula in the search index: the MathML's text, not also the glyph layout
    (`.katex-html`) and the TeX source (`<annotation>`).

    The search plugin skips an element marked `data-search-exclude`, but it matches elements by tag
    name, so the first nested `</span>` ends the skip. The layout's outer `<span>` therefore becomes
    `<ao-katex-html>`, a custom element (inline, like a span); KaTeX's stylesheet selects it by class.
    """
    rendered = rendered.replace('<annotation encoding="application/x-tex">',
                                '<annotation encoding="application/x-tex" data-search-exclude>')
    start = rendered.find('<span class="katex-html"')
    if start < 0:
        return rendered
    depth = 0
    for tag in SPAN_TAG.finditer(rendered, start):
        depth += 1 if tag.group(0) == "<span" else -1
        if depth == 0:
            end = tag.start()
            break
    else:
        raise MathError(f"unbalanced <span> in KaTeX's output: {rendered[:80]}")
    opening = rendered[start:].split(">", 1)[0]
    inner = rendered[start + len(opening) + 1:end]
    replacement = opening.replace("<span", "<ao-katex-html", 1) + " data-search-exclude>" + inner + "</ao-katex-html>"
    return rendered[:start] + replacement + rendered[end + len("</span>"):]


def plain_math(tex: str) -> str:
    """A formula as plain text (its MathML's characters), for a page title."""
    mathml = render_tex(tex, False).split('<span class="katex-html"')[0]
    mathml = re.sub(r"<annotation.*?</annotation>", "", mathml, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", "", mathml))


def render_math(page_html: str, rewrite: Callable[[str], str] = lambda tex: tex) -> str:
    """
    Replace every formula that arithmatex marked in `page_html` by its KaTeX rendering, after
    `rewrite` (which links the symbols of a module page to its code).
    """

    def rendered(tex: str, display: bool) -> str:
        linked = rewrite(tex)
        # The TeX kept in the MathML (for screen readers and copying) is the author's, without the links.
        return render_tex(linked, display).replace(html.escape(linked, quote=False), html.escape(tex, quote=False))

    def inline(match: re.Match[str]) -> str:
        return rendered(html.unescape(match.group(1)).strip(), False)

    def block(match: re.Match[str]) -> str:
        return rendered(html.unescape(match.group(1)).strip(), True)

    page_html = BLOCK.sub(block, page_html)
    page_html = BLOCK_ENVIRONMENT.sub(block, page_html)
    return INLINE.sub(inline, page_html)


# Fenced code blocks and code spans are masked before display math is looked for.
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"(`+)[^\n]*?[^`]\1(?!`)|(`+)[^`\n]\2(?!`)")
DISPLAY = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", re.DOTALL)


def mask_code(text: str) -> str:
    """`text` with fenced code and code spans blanked out (same length), so searches skip them."""
    shadow = list(text)
    for pattern in (FENCE, CODE_SPAN):
        for match in pattern.finditer(text):
            shadow[match.start():match.end()] = "\0" * (match.end() - match.start())
    return "".join(shadow)


LIST_ITEM = re.compile(r"[*+-]|\d+[.)]")


def list_item_indent(text: str, line_start: int, indent: str) -> str:
    """
    The indentation a formula needs to stay where it is once a blank line separates it. Python-Markdown
    continues a list item only with four spaces, so a formula indented by one to three spaces under a
    list item (the usual way to write it) is given four; outside a list such an indentation means
    nothing to Markdown but would hide the formula from arithmatex, so it is dropped.
    """
    if not 0 < len(indent.expandtabs(4)) < 4:
        return indent
    for line in reversed(text[:line_start].split("\n")):
        if line.strip() and not line[0].isspace():
            return "    " if LIST_ITEM.match(line.split(maxsplit=1)[0]) else ""
    return ""


def isolate_display_math(text: str) -> str:
    r"""
    Put every `$$...$$` formula in a paragraph of its own.

    In a comment the natural way to write is an equation on one line and a sentence on the next;
    Markdown would join them into one paragraph, and arithmatex only treats `$$...$$` as a display
    formula when it is a block by itself. The formula keeps the indentation of its line, so one
    inside a list item stays in the item.
    """
    masked = mask_code(text)
    out: list[str] = []
    position = 0
    for match in DISPLAY.finditer(masked):
        start, end = match.span()
        line_start = text.rfind("\n", 0, start) + 1
        indent = list_item_indent(text, line_start, re.match(r"[ \t]*", text[line_start:]).group(0))
        if text[line_start:start].strip():
            # Text before the formula on its line: the formula moves to a paragraph of its own.
            out.append(text[position:start].rstrip(" \t"))
            out.append("\n\n" + indent)
        else:
            out.append(text[position:line_start])
            emitted = "".join(out)
            if emitted.strip() and not emitted.endswith("\n\n"):
                out.append("\n")
            out.append(indent)
        out.append(text[start:end])
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        rest = text[end:line_end]
        position = line_end
        if rest.strip():
            # Text after the formula on its line starts the next paragraph.
            out.append("\n\n" + indent + rest.strip())
        elif text[line_end + 1:].split("\n", 1)[0].strip():
            out.append("\n")
    out.append(text[position:])
    return "".join(out)
