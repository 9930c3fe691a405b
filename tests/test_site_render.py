r"""The pieces of the site generator, without a browser: source to rows, math, markers and links."""

import ast
import io
import sys
import tokenize
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from sitegen import hooks, page  # noqa: E402
from sitegen.annotate import _source_segment, annotate  # noqa: E402
from sitegen.katex import MathError, isolate_display_math, render_math, render_tex  # noqa: E402

MODULES = sorted(p for p in (ROOT / "annotated_opt").rglob("*.py") if "__pycache__" not in p.parts)

EXAMPLE = '''r"""
# Example

The idea, $x_t$.
"""

import math


def halve(x):
    r"""
    ### Halving

    Returns $\\frac{x}{2}$.
    """
    # $$y = \\frac{x}{2}$$
    # and then it returns.
    y = x / 2

    # A second note,

    # in two paragraphs.
    return y
'''


def notes_and_docstring_lines(source: str) -> set[int]:
    """Lines that hold docstrings or whole-line comments, found independently of the renderer."""
    lines: set[int] = set()
    tree = ast.parse(source)
    for node in [tree, *ast.walk(tree)]:
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            if not isinstance(node, ast.Module) and body[0].lineno == node.lineno:
                continue
            lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    text = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and not text[token.start[0] - 1][: token.start[1]].strip():
            if not token.string.startswith(("# noqa", "#!", "# type:")):
                lines.add(token.start[0])
    return lines


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_code_line_appears_once_with_its_own_number(path: Path) -> None:
    source = path.read_text()
    module = annotate(source)
    shown = [(segment.start + i, line) for section in module.sections for segment in section.segments
             for i, line in enumerate(segment.lines)]
    numbers = [number for number, _ in shown]
    assert numbers == sorted(set(numbers)), "code lines repeated or out of order"
    lines = source.splitlines()
    for number, line in shown:
        assert lines[number - 1] == line
    expected = {n for n, line in enumerate(lines, 1) if line.strip()} - notes_and_docstring_lines(source)
    assert {n for n, line in shown if line.strip()} == expected


NON_ASCII = 'r"""\n# Über\n\nΩ $x$.\n"""\n\nπ = "é"; τ = """a\nβ"""\n\n\ndef f(x):\n    """Ω."""\n    return x\n'


@pytest.mark.parametrize("source", [NON_ASCII, NON_ASCII.replace("\n", "\r\n"),
                                    *(path.read_text() for path in MODULES[:3])],
                         ids=["non-ASCII", "CRLF", *(path.stem for path in MODULES[:3])])
def test_the_source_of_each_node_is_the_parsers(source: str) -> None:
    """The docstrings' source is cut as `ast.get_source_segment` cuts it: columns in bytes, any line ends."""
    lines = io.StringIO(source, newline="").readlines()
    nodes = [node for node in ast.walk(ast.parse(source)) if getattr(node, "end_lineno", None) is not None]
    assert len(nodes) > 10
    for node in nodes:
        assert _source_segment(lines, node) == ast.get_source_segment(source, node)


def test_docstrings_and_comments_become_notes_beside_their_code() -> None:
    module = annotate(EXAMPLE)
    assert module.title == "Example"
    intro, imports, halve, formula, second = module.sections
    # The module's notes are a row of their own, across the page; the imports start the code.
    assert "The idea, $x_t$." in intro.notes_text and not intro.segments
    assert not imports.notes and [(s.start, s.text) for s in imports.segments] == [(7, "import math")]
    # The docstring is read as written: a raw string's backslashes stay.
    assert "$\\frac{x}{2}$" in halve.notes_text and halve.anchor == "halve"
    assert [(s.start, s.end) for s in halve.segments] == [(10, 10)]
    assert formula.notes_text == "$$y = \\frac{x}{2}$$\nand then it returns."
    assert [(s.start, s.text) for s in formula.segments] == [(18, "    y = x / 2")]
    assert second.notes == ["A second note,", "in two paragraphs."]
    assert [(s.start, s.text) for s in second.segments] == [(23, "    return y")]


def test_a_docstring_splits_the_code_beside_it_at_the_right_line_numbers() -> None:
    module = annotate(open(ROOT / "annotated_opt" / "adam.py").read())
    section = next(s for s in module.sections if s.anchor == "Adam.update_moments")
    lines = (ROOT / "annotated_opt" / "adam.py").read_text().splitlines()
    header, body = section.segments
    assert lines[header.start - 1].lstrip().startswith("def update_moments")
    assert lines[body.start - 2].strip() == '"""'


def test_a_docstring_that_is_not_raw_is_reported() -> None:
    assert annotate('"""A \\frac."""\n').cooked_docstrings == [1]
    assert annotate('r"""A \\frac."""\n').cooked_docstrings == []


def test_display_math_gets_a_paragraph_of_its_own_except_in_code() -> None:
    assert isolate_display_math("$$a$$\nnext line") == "$$a$$\n\nnext line"
    assert isolate_display_math("text $$a$$ more") == "text\n\n$$a$$\n\nmore"
    # Python-Markdown continues a list item only with four spaces: the formula gets them.
    assert isolate_display_math("* item\n  $$a$$\n  more") == "* item\n\n    $$a$$\n\n  more"
    # Outside a list a shallow indentation means nothing, and would hide the formula from arithmatex.
    assert isolate_display_math("para\n  $$a$$") == "para\n\n$$a$$"


def test_a_formula_under_a_list_item_renders_as_display_math_inside_the_item() -> None:
    import markdown

    source = isolate_display_math("* **L2** changes the gradient:\n  $$g \\leftarrow g + \\lambda\\theta$$\n* next")
    html = markdown.markdown(source, extensions=["pymdownx.arithmatex"], extension_configs={
        "pymdownx.arithmatex": {"generic": True}})
    item = html.split("<li>")[1]
    assert '<div class="arithmatex">' in item and "$$" not in html
    assert isolate_display_math("`$$a$$` and\n```\n$$b$$\nc\n```") == "`$$a$$` and\n```\n$$b$$\nc\n```"


def test_math_is_rendered_by_katex_and_a_latex_error_is_an_error() -> None:
    html = render_math('<p><span class="arithmatex">\\(x &lt; 1\\)</span></p>'
                       '<div class="arithmatex">\\[\\textcolor{orange}{v}\\]</div>')
    assert html.count('class="katex"') == 2 and "arithmatex" not in html
    assert "color:var(--ao-color-orange, orange)" in html
    with pytest.raises(MathError, match="frac"):
        render_tex("\\frac{1}{", False)


def test_a_bad_formula_fails_the_page() -> None:
    fake_page = SimpleNamespace(toc=[], file=SimpleNamespace(src_uri="guides/x.md"))
    with pytest.raises(hooks.PluginError, match="guides/x.md"):
        hooks.on_page_content('<span class="arithmatex">\\(\\undefinedmacro\\)</span>', fake_page, None, None)


def test_plot_markers_become_figures_and_a_missing_plot_fails_the_build(tmp_path, monkeypatch) -> None:
    source = "Intro\n<!-- plot: momentum/ema -->\n```\n<!-- plot: not/replaced -->\n```\n"
    out = page.replace_plot_markers(source, lambda name, slug: f"FIGURE({name}/{slug})")
    assert "FIGURE(momentum/ema)" in out and "<!-- plot: not/replaced -->" in out
    monkeypatch.setattr(hooks, "DOCS", tmp_path)
    fake_page = SimpleNamespace(file=SimpleNamespace(src_uri="guides/momentum.md"))
    with pytest.raises(hooks.PluginError, match="generated/plots/momentum/ema.svg"):
        hooks.plot_figure(fake_page, "momentum", "ema")
    (tmp_path / "generated" / "plots" / "momentum").mkdir(parents=True)
    (tmp_path / "generated" / "plots" / "momentum" / "ema.svg").write_text("<svg/>")
    (tmp_path / "generated" / "plots" / "momentum" / "ema.txt").write_text("An average, $m_t$.\n")
    figure = hooks.plot_figure(fake_page, "momentum", "ema")
    assert "](../generated/plots/momentum/ema.svg)" in figure and "An average, $m_t$." in figure


def test_module_links_resolve_from_any_page() -> None:
    hooks.on_config(SimpleNamespace(nav=[]))
    files = SimpleNamespace(get_file_from_path=lambda path: None)
    guide = SimpleNamespace(file=SimpleNamespace(src_uri="guides/momentum.md"))
    module = SimpleNamespace(file=SimpleNamespace(src_uri="annotated_opt/amsgrad.md"))
    text = "See [Adam](adam.md#bias-correction), [`SGD`](../sgd.md) and `[not](adam.md)`."
    assert page.rewrite_links(text, hooks.link_resolver(guide, files)) == (
        "See [Adam](../annotated_opt/adam.md#bias-correction), [`SGD`](../annotated_opt/sgd.md) and "
        "`[not](adam.md)`.")
    # A module may mention one that is not written yet: the words stay, the link goes.
    assert page.rewrite_links("[Later](later_optimizer.md)", hooks.link_resolver(module, files)) == "Later"
    # Elsewhere an unknown page stays a link, for MkDocs to report.
    assert page.rewrite_links("[x](nowhere.md)", hooks.link_resolver(guide, files)) == "[x](nowhere.md)"


def test_the_navigation_lists_every_module_and_optimizer() -> None:
    hooks.on_config(SimpleNamespace(nav=None))
    listed = []

    def walk(entries):
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            if isinstance(value, list):
                walk(value)
            else:
                listed.append(value)

    config = SimpleNamespace(nav=None)
    hooks.on_config(config)
    walk(config.nav)
    assert sorted(listed) == sorted(set(listed))
    assert {m.src_uri for m in hooks.MODULES} <= set(listed)
    assert "guides/how-pages-are-made.md" in listed


def test_the_navigation_puts_optimizers_first_and_titles_every_page() -> None:
    """Optimizers, then the machinery, then the guides; no module name stands in for a title."""
    config = SimpleNamespace(nav=None)
    hooks.on_config(config)
    sections = [next(iter(entry)) if isinstance(entry, dict) else entry for entry in config.nav]
    assert sections.index("Optimizers") < sections.index("Machinery") < sections.index("Guides")
    titles = []

    def walk(entries):
        for entry in entries:
            if isinstance(entry, dict):
                title, value = next(iter(entry.items()))
                titles.append(title)
                if isinstance(value, list):
                    walk(value)

    walk(config.nav)
    module_names = {m.name for m in hooks.MODULES} | {"__main__", "__init__"}
    assert not module_names & set(titles), sorted(module_names & set(titles))


def test_a_moved_module_page_redirects_to_its_new_address() -> None:
    html = hooks.redirect_page("base", "core.base")
    assert 'url=../core/base/"' in html and 'rel="canonical" href="../core/base/"' in html
    assert 'url=../../schedules/functional/"' in hooks.redirect_page("composable.schedules", "schedules.functional")


def test_long_module_notes_are_split_at_their_sections() -> None:
    source = 'r"""\n# T\n\nIntro.\n\n## One\n\nA.\n\n```\n## not a heading\n```\n\n## Two\n\nB.\n"""\n\nx = 1\n'
    module = annotate(source)
    notes = [section.notes_text for section in module.sections if not section.segments]
    assert notes == ["Intro.", "## One\n\nA.\n\n```\n## not a heading\n```", "## Two\n\nB."]
    assert [section.anchor for section in module.sections][:3] == ["introduction", "about-one", "about-two"]
