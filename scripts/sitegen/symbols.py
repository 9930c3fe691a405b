r"""Symbols linked to code, and the algorithm box.

**The notation table.** Each optimizer module names, once, which variables of its code hold which
symbol of its math, in a section of its notes headed `## Notation`:

```
| symbol | in the code | meaning |
|---|---|---|
| $m_t$ | `exp_avg` | the first moment |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay rates |
```

A symbol is a letter or a TeX command (`\eta`), optionally with a digit subscript that is part of its
name ($\beta_1$); an accent or a time index ($\hat v_t$, $m_{t-1}$) is not, so every form of $m$ on
the page links to `exp_avg`. Several symbols in one cell pair with several names in order; one name
for several symbols is shared. Every name must occur in the module's code (as a name or a string such
as a state key): a table that names a variable the code does not have fails the build.

The page then ties the two together. In the math, each occurrence of a symbol is wrapped in
`\htmlData{sym=...}` before KaTeX renders it; in the code (and in code spans of the notes), each
occurrence of a name gets the same `data-sym`. A small script highlights every element with the
symbol under the pointer, or the one tapped.

**The algorithm box.** A fenced block of language `algorithm` in the notes is the whole algorithm in
a few lines, one formula a line, each followed by `@` and a piece of the code that computes it (on
the same line, or on the next when the line would be long):

```
\theta_t = \theta_{t-1} - \eta\,\hat m_t / (\sqrt{\hat v_t} + \epsilon)
    @ param.addcdiv_
```

The box shows the formulas in order, each a link to the row of the page whose code contains its
piece; a piece found nowhere in the code fails the build.
"""

from __future__ import annotations

import ast
import html
import io
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass

from .annotate import AnnotatedModule

NOTATION_HEADING = re.compile(r"^##\s+Notation\s*$", re.MULTILINE)
TABLE_ROW = re.compile(r"^\|(.+)\|\s*$")
MATH = re.compile(r"\$([^$]+)\$")
CODE = re.compile(r"`([^`]+)`")
# TeX tokens: a command, an escaped character, or any single character.
TEX_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|.", re.DOTALL)
# Commands whose argument is text or a name, never a symbol; `\textcolor` only for its first (the colour).
VERBATIM_ARGUMENT = {"\\text", "\\mathrm", "\\operatorname", "\\texttt", "\\textbf", "\\textit", "\\mathbf",
                     "\\mathsf", "\\begin", "\\end", "\\textcolor", "\\color", "\\htmlData", "\\htmlClass",
                     "\\label", "\\tag", "\\mbox", "\\textsf", "\\mathcal", "\\mathbb"}
ACCENTS = {"\\hat", "\\bar", "\\tilde", "\\widehat", "\\widetilde", "\\overline", "\\dot", "\\ddot", "\\vec"}
ALGORITHM_FENCE = re.compile(r"^([ \t]*)```algorithm[ \t]*\n(.*?)^\1```[ \t]*$", re.DOTALL | re.MULTILINE)


class NotationError(ValueError):
    """A notation table or an algorithm box that does not match the code."""


@dataclass(frozen=True)
class Symbol:
    key: str
    names: tuple[str, ...]

    @property
    def attribute(self) -> str:
        """The value of `data-sym`: letters, digits and hyphens only."""
        return re.sub(r"[^A-Za-z0-9]+", "-", self.key.lstrip("\\")).strip("-")


def symbol_key(tex: str) -> str:
    r"""The name part of a symbol as written in a table: `\hat v_t` -> `v`, `\beta_1` -> `\beta_1`."""
    tokens = [t for t in TEX_TOKEN.findall(tex) if t.strip() and t not in ACCENTS and t not in "{}"]
    if not tokens:
        raise NotationError(f"no symbol in ${tex}$")
    base = tokens[0]
    if len(tokens) >= 3 and tokens[1] == "_" and tokens[2].isdigit():
        return f"{base}_{tokens[2]}"
    return base


def parse_notation(notes: str) -> list[Symbol]:
    """The symbols of the `## Notation` table in `notes` (empty when there is none)."""
    match = NOTATION_HEADING.search(notes)
    if match is None:
        return []
    symbols: dict[str, list[str]] = {}
    for line in notes[match.end():].lstrip("\n").split("\n"):
        row = TABLE_ROW.match(line.strip())
        if row is None:
            if line.strip():
                break
            continue
        cells = [cell.strip() for cell in row.group(1).split("|")]
        keys = [symbol_key(tex) for math in MATH.findall(cells[0]) for tex in math.split(",") if tex.strip()]
        names = CODE.findall(cells[1]) if len(cells) > 1 else []
        if not keys or not names:
            continue
        for index, key in enumerate(keys):
            paired = [names[index]] if len(names) == len(keys) else names
            symbols.setdefault(key, [])
            symbols[key] += [n for n in paired if n not in symbols[key]]
    return [Symbol(key, tuple(names)) for key, names in symbols.items()]


def module_symbols(module: AnnotatedModule) -> list[Symbol]:
    return [symbol for block in module.notes for symbol in parse_notation(block)]


def code_identifiers(source: str) -> set[str]:
    """Every name in the code of `source`, and the text of every short string (state keys, options)."""
    found: set[str] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME:
            found.add(token.string)
        elif token.type == tokenize.STRING and len(token.string) < 40 and not token.string.startswith(("f", "F")):
            value = ast.literal_eval(token.string)
            if isinstance(value, str):
                found.add(value)
    return found


def check_symbols(symbols: list[Symbol], source: str) -> None:
    known = code_identifiers(source)
    missing = sorted({name for symbol in symbols for name in symbol.names if name not in known})
    if missing:
        raise NotationError(f"the notation table names {', '.join(missing)}, which the code does not have")


# ---------------------------------------------------------------------------------------------
# The math


def _group_end(tokens: list[str], start: int) -> int:
    """The index after the argument starting at `start` (a `{...}` group or one token)."""
    if start >= len(tokens):
        return start
    if tokens[start] != "{":
        return start + 1
    depth = 0
    for index in range(start, len(tokens)):
        depth += {"{": 1, "}": -1}.get(tokens[index], 0)
        if depth == 0:
            return index + 1
    return len(tokens)


def _skip_spaces(tokens: list[str], index: int) -> int:
    while index < len(tokens) and tokens[index].isspace():
        index += 1
    return index


def tag_tex(tex: str, symbols: list[Symbol]) -> str:
    r"""`tex` with each symbol of `symbols` wrapped in `{\htmlData{sym=...}{...}}`."""
    by_key = {symbol.key: symbol for symbol in symbols}
    if not by_key:
        return tex
    tokens = TEX_TOKEN.findall(tex)
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in VERBATIM_ARGUMENT:
            start = _skip_spaces(tokens, index + 1)
            start += start < len(tokens) and tokens[start] == "*"
            end = _group_end(tokens, _skip_spaces(tokens, start))
            out += tokens[index:end]
            index = end
            continue
        if token not in by_key and not any(key.startswith(token + "_") for key in by_key):
            out.append(token)
            index += 1
            continue
        # A subscript that is part of the name ($\beta_1$) joins the symbol; any other stays outside.
        after = _skip_spaces(tokens, index + 1)
        end = index + 1
        key = token
        if after < len(tokens) and tokens[after] == "_":
            sub_start = _skip_spaces(tokens, after + 1)
            sub_end = _group_end(tokens, sub_start)
            subscript = "".join(tokens[sub_start:sub_end]).strip("{}").strip()
            if f"{token}_{subscript}" in by_key:
                key, end = f"{token}_{subscript}", sub_end
        if key not in by_key:
            out.append(token)
            index += 1
            continue
        out.append(f"{{\\htmlData{{sym={by_key[key].attribute}}}{{{''.join(tokens[index:end])}}}}}")
        index = end
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# The code

# A name, or a string of one (a state key), in pygments' highlighting.
CODE_NAME = re.compile(r'(<span class="(?:n|nb|nv|bp|na|nf|s1|s2)")>(&quot;|&#39;|\'|"|)'
                       r'([A-Za-z_][A-Za-z0-9_]*)\2</span>')
NOTES_CODE = re.compile(r"<code>([A-Za-z_][A-Za-z0-9_]*)</code>")


def tag_code(page_html: str, symbols: list[Symbol]) -> str:
    """Give every code name of `symbols` in the page (code blocks and code spans) its `data-sym`."""
    by_name: dict[str, str] = {}
    for symbol in symbols:
        for name in symbol.names:
            by_name.setdefault(name, symbol.attribute)
    if not by_name:
        return page_html

    def highlighted(match: re.Match[str]) -> str:
        attribute = by_name.get(match.group(3))
        if attribute is None:
            return match.group(0)
        quote = match.group(2)
        return f'{match.group(1)} data-sym="{attribute}">{quote}{match.group(3)}{quote}</span>'

    def spanned(match: re.Match[str]) -> str:
        attribute = by_name.get(match.group(1))
        return match.group(0) if attribute is None else f'<code data-sym="{attribute}">{match.group(1)}</code>'

    return NOTES_CODE.sub(spanned, CODE_NAME.sub(highlighted, page_html))


# ---------------------------------------------------------------------------------------------
# The algorithm box


ELSEWHERE = re.compile(r"^([\w/]+\.py):\s*(.+)$")


def algorithm_boxes(notes: str, module: AnnotatedModule,
                    elsewhere: Callable[[str, str], tuple[str, int]] | None = None) -> str:
    """
    Replace each `algorithm` fence in `notes` by the box, each line linked to its row of code. A line
    whose code lives in another module (a child that inherits the step) names it first,
    `@ adam.py: exp_avg.lerp_`; `elsewhere(file, code)` gives the link and the line there.
    """

    def box(match: re.Match[str]) -> str:
        indent = match.group(1)
        items = []
        # A formula runs on until its `@`: a long one continues on the next lines, and the code may
        # start a line of its own.
        lines = [line.strip() for line in match.group(2).split("\n") if line.strip()]
        joined: list[str] = []
        for line in lines:
            if joined and "@" not in joined[-1]:
                joined[-1] += " " + line
            else:
                joined.append(line)
        for line in joined:
            formula, separator, code = line.rpartition("@")
            if not separator or not formula.strip() or not code.strip():
                raise NotationError(f"an algorithm line needs a formula, '@' and a piece of code: {line.strip()!r}")
            other = ELSEWHERE.match(code.strip())
            if other and elsewhere is not None:
                href, number = elsewhere(other.group(1), other.group(2).strip())
                where = f"{other.group(1)}, line {number}"
            else:
                anchor, number = row_of(module, code.strip())
                href, where = f"#{anchor}", f"line {number}"
            items.append(f'<li><a class="ao-algorithm-line" href="{href}" title="{where}">'
                         f'<span class="arithmatex">\\(\\displaystyle {html.escape(formula.strip())}\\)</span></a>'
                         f'<span class="ao-algorithm-where">{where}</span></li>')
        return (f'{indent}<div class="ao-algorithm"><p class="ao-algorithm-title">Algorithm</p>'
                f'<ol>{"".join(items)}</ol></div>')

    return ALGORITHM_FENCE.sub(box, notes)


def row_of(module: AnnotatedModule, code: str) -> tuple[str, int]:
    """The anchor of the first row whose code contains `code`, and the line where it does."""
    for section in module.sections:
        for segment in section.segments:
            for offset, line in enumerate(segment.lines):
                if code in line:
                    return section.anchor, segment.start + offset
    raise NotationError(f"the algorithm box points at {code!r}, which no line of the code contains")
