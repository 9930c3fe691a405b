r"""Markdown for the site's pages: the two-column module pages and the pieces of the others.

A module page is a title, an optional header (an optimizer's facts), one row per section of the
module, and an optional footer (its plots). A row is three `<div markdown>` blocks (`md_in_html`):
the notes go through Markdown like any page (so the search, the table of contents and the math see
them), and the code is a fenced block that `pymdownx.highlight` colours with the theme's palette,
numbered from the line where it starts in the file.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from .annotate import AnnotatedModule, Section
from .katex import isolate_display_math, mask_code

PLOT_MARKER = re.compile(r"^[ \t]*<!--[ \t]*plot:[ \t]*([\w.-]+)/([\w.-]+)[ \t]*-->[ \t]*$", re.MULTILINE)
LINK = re.compile(r"(?<!!)\[((?:[^\[\]]|\[[^\]]*\])+)\]\(([^()\s#]+\.md)(#[^()\s]*)?\)")


def code_fence(code: str) -> str:
    """A backtick fence longer than any run of backticks inside `code`."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


def row_markdown(section: Section) -> str:
    notes = isolate_display_math(section.notes_text)
    kind = "ao-row" if section.segments else "ao-row ao-notes-only"
    parts = [f'<div class="{kind}" id="{section.anchor}" markdown>', '<div class="ao-notes" markdown>', "", notes,
             "", "</div>"]
    if section.segments:
        parts += ['<div class="ao-code" markdown>', ""]
        for segment in section.segments:
            fence = code_fence(segment.text)
            parts += [f'{fence}python linenums="{segment.start}"', segment.text, fence, ""]
        parts += ["</div>"]
    parts += ["</div>", ""]
    return "\n".join(parts)


def module_markdown(module: AnnotatedModule, *, title: str, source_name: str, source_url: str, header: str = "",
                    footer: str = "") -> str:
    """The whole page of one module; `source_url` is the module's file as the site serves it."""
    parts = [f"# {title}", "",
             f'<p class="ao-source"><a href="{source_url}" title="The source file"><code>{source_name}</code></a></p>',
             ""]
    if header:
        parts += [header, ""]
    last_line = max((segment.end for section in module.sections for segment in section.segments), default=1)
    # Every row numbers its lines in a gutter as wide as the file's longest number, so the code lines up.
    parts += [f'<div class="ao-annotated" style="--ao-lineno-width: {len(str(last_line)) + 1}ch" markdown>', ""]
    for section in module.sections:
        parts.append(row_markdown(section))
    parts += ["</div>", ""]
    if footer:
        parts += [footer, ""]
    return "\n".join(parts)


def figure_markdown(image: str, caption: str) -> str:
    """A figure with its caption; `image` is the path of the SVG relative to the page."""
    alt = re.sub(r"[$\\`*_{}\[\]]", "", caption).strip()
    alt = alt.replace('"', "'")
    return "\n".join([
        '<figure class="ao-plot" markdown>',
        "",
        # The image links to itself: on a phone, a tap opens the figure at full size.
        f'[![{alt}]({image})]({image}){{ .ao-plot-link title="Open the figure at full size" }}',
        "",
        '<figcaption markdown>',
        "",
        caption.strip(),
        "",
        "</figcaption>",
        "</figure>",
    ])


def replace_plot_markers(markdown: str, figure: Callable[[str, str], str]) -> str:
    """Replace each line `<!-- plot: <page>/<slug> -->` (outside code) by `figure(page, slug)`."""
    masked = mask_code(markdown)
    out, position = [], 0
    for match in PLOT_MARKER.finditer(masked):
        out += [markdown[position:match.start()], "\n", figure(match.group(1), match.group(2)), "\n"]
        position = match.end()
    out.append(markdown[position:])
    return "".join(out)


def rewrite_links(markdown: str, resolve: Callable[[str], str | None]) -> str:
    """
    Rewrite each `[text](target.md#anchor)` outside code with `resolve(target)`: a new target, the
    same one, or `None` to drop the link and keep its text.
    """
    masked = mask_code(markdown)
    out, position = [], 0
    for match in LINK.finditer(masked):
        target, anchor = match.group(2), match.group(3) or ""
        resolved = resolve(target)
        out.append(markdown[position:match.start()])
        if resolved is None:
            out.append(markdown[match.start(1):match.end(1)])
        else:
            out.append(f"[{markdown[match.start(1):match.end(1)]}]({resolved}{anchor})")
        position = match.end()
    out.append(markdown[position:])
    return "".join(out)


def relative(target: str, page_src_uri: str) -> str:
    """The path of `target` (relative to the docs folder) as seen from the page `page_src_uri`."""
    return posixpath.relpath(target, posixpath.dirname(page_src_uri) or ".")
