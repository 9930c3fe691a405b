r"""Split a Python module into sections: the notes, and the code they describe.

The notes of a module are

* its docstring (the introduction),
* the docstring of every class and function, which sits beside the `def`/`class` line and its body,
* every block of `#` comments on lines of their own, which sits beside the code below it.

Everything else is code, shown with its original line numbers. A new section starts wherever notes
start after some code, so each row of the page pairs one block of notes with exactly the code it
describes. `ast` finds the docstrings and the definitions, `tokenize` finds the comments; no regular
expression is run over the Python text.

Docstrings are read from the source text between the quotes, not from their value: this library's
docstrings are raw strings full of LaTeX, and even a non-raw one should show what its author wrote.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
from dataclasses import dataclass, field

# Comments that are instructions to tools, not prose: they stay in the code.
PRAGMA = re.compile(r"#\s*(noqa\b|type:|fmt:|pragma\b|pylint:|mypy:|-\*-)|#!")

STRING_PREFIX = re.compile(r"^([rRuUbBfF]*)('''|\"\"\"|'|\")")


@dataclass
class Segment:
    """Consecutive lines of code, starting at line `start` (1-based) of the file."""

    start: int
    lines: list[str] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.start + len(self.lines) - 1

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Section:
    """One row of a page: markdown notes and the code segments beside them."""

    notes: list[str] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    anchor: str = ""
    first_line: int = 0

    @property
    def has_code(self) -> bool:
        return any(line.strip() for segment in self.segments for line in segment.lines)

    @property
    def notes_text(self) -> str:
        return "\n\n".join(block for block in self.notes if block.strip())

    def add_code(self, number: int, line: str) -> None:
        if self.segments and self.segments[-1].end == number - 1:
            self.segments[-1].lines.append(line)
        else:
            self.segments.append(Segment(number, [line]))


@dataclass
class Docstring:
    """A docstring and the definition it belongs to (`header` lines are the decorators and `def`)."""

    text: str
    start: int
    end: int
    raw: bool
    header_start: int | None = None
    qualname: str | None = None


@dataclass
class AnnotatedModule:
    title: str | None
    sections: list[Section]
    #: line numbers of non-raw docstrings that contain a backslash (their value differs from the text)
    cooked_docstrings: list[int] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """Every block of notes, in order (including the title)."""
        return [block for section in self.sections for block in section.notes]


def literal_text(source_segment: str) -> tuple[str, bool]:
    """The text between the quotes of a string literal as written, and whether it is raw."""
    match = STRING_PREFIX.match(source_segment)
    if match is None:
        raise ValueError(f"not a string literal: {source_segment[:40]!r}")
    prefix, quote = match.groups()
    body = source_segment[match.end():]
    if not body.endswith(quote):
        raise ValueError(f"unterminated string literal: {source_segment[:40]!r}")
    return body[: len(body) - len(quote)], "r" in prefix.lower()


def _source_segment(lines: list[str], node: ast.AST) -> str:
    r"""
    The source of `node`, as `ast.get_source_segment` gives it, from the module's lines (with their
    ends) split once: `get_source_segment` splits the whole module again at every call, which made
    annotating the 80 modules take 1.5 s instead of 0.35 s. Columns count bytes of UTF-8, as the
    parser does.
    """
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset:node.end_col_offset].decode()
    head = lines[first].encode()[node.col_offset:].decode()
    tail = lines[last].encode()[:node.end_col_offset].decode()
    return head + "".join(lines[first + 1:last]) + tail


def _docstring_of(node: ast.AST, lines: list[str]) -> tuple[ast.Expr, str, bool] | None:
    body = getattr(node, "body", None)
    if not body or not isinstance(body[0], ast.Expr):
        return None
    value = body[0].value
    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
        return None
    try:
        text, raw = literal_text(_source_segment(lines, value))
    except ValueError:
        # An implicitly concatenated docstring ("a" "b"): fall back to its value.
        text, raw = value.value, False
    return body[0], inspect.cleandoc(text), raw


def find_docstrings(tree: ast.Module, source: str) -> tuple[Docstring | None, list[Docstring], dict[int, str]]:
    """The module docstring, the docstrings of definitions, and the first line -> name of every definition."""
    module_doc = None
    # Split where the parser splits: at `\n`, `\r` and `\r\n` only, each line keeping its end.
    lines = io.StringIO(source, newline="").readlines()
    found = _docstring_of(tree, lines)
    if found:
        expr, text, raw = found
        module_doc = Docstring(text, expr.lineno, expr.end_lineno or expr.lineno, raw)

    definitions: list[Docstring] = []
    starts: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qualname = f"{prefix}{child.name}"
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                starts.setdefault(first, qualname)
                found = _docstring_of(child, lines)
                if found:
                    expr, text, raw = found
                    # A docstring on the line of its `def` (`def f(): """..."""`) cannot be split off.
                    if expr.lineno > child.lineno:
                        definitions.append(Docstring(text, expr.lineno, expr.end_lineno or expr.lineno, raw,
                                                     header_start=first, qualname=qualname))
                visit(child, f"{qualname}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return module_doc, definitions, starts


def find_comments(source: str) -> dict[int, str]:
    """Line number -> text of every comment that has a line to itself (without `#` and one space)."""
    comments: dict[int, str] = {}
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        row, column = token.start
        if lines[row - 1][:column].strip() or PRAGMA.match(token.string):
            continue
        text = token.string[1:]
        comments[row] = text[1:] if text.startswith(" ") else text
    return comments


FENCE_LINE = re.compile(r"^[ \t]*(`{3,}|~{3,})")


def split_at_sections(text: str) -> list[str]:
    """`text` cut before each `## ` heading that is not inside fenced code."""
    parts: list[list[str]] = [[]]
    fence = None
    for line in text.split("\n"):
        match = FENCE_LINE.match(line)
        if match and (fence is None or match.group(1).startswith(fence)):
            fence = None if fence else match.group(1)
        if fence is None and line.startswith("## ") and any(x.strip() for x in parts[-1]):
            parts.append([])
        parts[-1].append(line)
    return ["\n".join(part).strip("\n") for part in parts]


def _trim(sections: list[Section]) -> list[Section]:
    """Drop blank lines at either end of each segment, then empty segments and sections."""
    kept = []
    for section in sections:
        segments = []
        for segment in section.segments:
            lines, start = segment.lines, segment.start
            while lines and not lines[0].strip():
                lines, start = lines[1:], start + 1
            while lines and not lines[-1].strip():
                lines = lines[:-1]
            if lines:
                segments.append(Segment(start, lines))
        section.segments = segments
        if section.segments or section.notes_text:
            kept.append(section)
    return kept


def annotate(source: str) -> AnnotatedModule:
    """Split `source` (the text of a Python module) into its title and sections."""
    tree = ast.parse(source)
    module_doc, definitions, starts = find_docstrings(tree, source)
    comments = find_comments(source)
    lines = source.splitlines()
    cooked = [d.start for d in ([module_doc] if module_doc else []) + definitions if not d.raw and "\\" in d.text]

    by_header = {d.header_start: d for d in definitions}
    sections = [Section()]
    comment_block: list[str] | None = None

    def current() -> Section:
        return sections[-1]

    def start_section_if_code(first_line: int) -> Section:
        if current().has_code:
            sections.append(Section(first_line=first_line))
        if not current().first_line:
            current().first_line = first_line
        return current()

    def close_comment_block() -> None:
        nonlocal comment_block
        if comment_block is not None:
            current().notes.append("\n".join(comment_block))
            comment_block = None

    number = 1
    while number <= len(lines):
        line = lines[number - 1]
        if module_doc and number == module_doc.start:
            close_comment_block()
            # The module's notes are prose about the whole algorithm, not about the imports below them:
            # each of their sections is a row of its own, across the page, and the code starts afresh.
            for part in split_at_sections(module_doc.text):
                start_section_if_code(number).notes.append(part)
                sections.append(Section(first_line=number))
            number = module_doc.end + 1
            continue
        if number in by_header:
            close_comment_block()
            doc = by_header[number]
            section = start_section_if_code(number)
            section.anchor = section.anchor or doc.qualname or ""
            for header_line in range(doc.header_start, doc.start):
                section.add_code(header_line, lines[header_line - 1])
            section.notes.append(doc.text)
            number = doc.end + 1
            continue
        if number in comments:
            if comment_block is None:
                start_section_if_code(number)
                comment_block = []
            comment_block.append(comments[number])
        elif not line.strip():
            if comment_block is not None:
                # A blank line inside a run of comments ends a paragraph.
                close_comment_block()
            elif current().has_code:
                current().add_code(number, line)
        else:
            close_comment_block()
            section = current()
            if not section.has_code:
                section.anchor = section.anchor or starts.get(number, "")
                section.first_line = section.first_line or number
            section.add_code(number, line)
        number += 1
    close_comment_block()

    sections = _trim(sections)
    title = None
    if sections and sections[0].notes:
        first = sections[0].notes[0]
        heading, _, rest = first.partition("\n")
        if heading.startswith("# "):
            title = heading[2:].strip()
            sections[0].notes[0] = rest.strip("\n")
    _name_anchors(sections)
    return AnnotatedModule(title, sections, cooked)


def _name_anchors(sections: list[Section]) -> None:
    """Every section gets a unique id: the name it defines, or `L<line>` where it starts."""
    used: set[str] = set()
    if sections and sections[0].notes and not sections[0].anchor:
        sections[0].anchor = "introduction"
    for section in sections:
        first = section.segments[0].start if section.segments else section.first_line
        heading = section.notes[0].partition("\n")[0] if section.notes else ""
        if not section.anchor and not section.segments and heading.startswith("## "):
            # A section of the module's notes: named after its heading (a prefix keeps it apart from
            # the heading's own id).
            words = re.sub(r"\$[^$]*\$", "", heading[3:]).lower()
            section.anchor = "about-" + re.sub(r"[^a-z0-9]+", "-", words).strip("-")
        anchor = section.anchor or f"L{first}"
        if anchor in used:
            anchor = f"L{first}"
        while anchor in used:
            anchor += "-"
        used.add(anchor)
        section.anchor = anchor
