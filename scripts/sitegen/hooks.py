r"""The MkDocs hook that builds the annotated site (named under `hooks:` in `mkdocs.yml`).

* `on_config` builds the navigation: every optimizer by family, the guides in `docs/guides/`, the other
  pages in `docs/`, and every module of the package in a "Library" section.
* `on_files` generates one page per module of `annotated_opt/` (optimizer pages also run their
  verification) and adds KaTeX's stylesheet and fonts to the site.
* `on_page_markdown` fills in the optimizer table, the `<!-- plot: page/slug -->` figures, and module
  links such as `[Adam](adam.md)` written on pages outside the package folder.
* `on_page_content` renders the math with KaTeX and adds the section permalinks.
"""

from __future__ import annotations

import html
import json
import logging
import posixpath
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# `mkdocs` runs as a console script whose sys.path starts with the virtual environment's bin folder:
# put this checkout first, so the pages describe this checkout's package and nobody else's.
for entry in (str(ROOT / "scripts"), str(ROOT)):
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)

from mkdocs.config.defaults import MkDocsConfig  # noqa: E402
from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File, Files  # noqa: E402
from mkdocs.structure.pages import Page  # noqa: E402

import annotated_opt  # noqa: E402
from annotated_opt.core.registry import REGISTRY, OptimizerInfo  # noqa: E402
from annotated_opt.core.verification import SEEDS, VerificationSummary, verify_named  # noqa: E402
from sitegen import family, symbols  # noqa: E402
from sitegen import page as markdown  # noqa: E402
from sitegen.annotate import AnnotatedModule, annotate  # noqa: E402
from sitegen.katex import KATEX_VERSION, MathError, plain_math, render_math, render_tex  # noqa: E402
from sitegen.parallel import map_on_cores  # noqa: E402

if Path(annotated_opt.__file__).resolve().parent != ROOT / "annotated_opt":
    raise ImportError(f"annotated_opt was imported from {annotated_opt.__file__}, not from {ROOT}")

log = logging.getLogger("mkdocs.hooks.annotated_opt")

PACKAGE = ROOT / "annotated_opt"
DOCS = ROOT / "docs"
PLOTS = "generated/plots"
KATEX_DIST = ROOT / "node_modules" / "katex" / "dist"
# The build checks each optimizer with one seed, to keep it quick; the tests run all of them.
BUILD_SEEDS = (0,)
TABLE_MARKER = re.compile(r"^[ \t]*<!--[ \t]*optimizer-table[ \t]*-->[ \t]*$", re.MULTILINE)
INCLUDE_MARKER = re.compile(r"^[ \t]*<!--[ \t]*include:[ \t]*(generated/[\w./-]+\.md)[ \t]*-->[ \t]*$", re.MULTILINE)
# Guides whose place in the navigation is known; any other guide comes after these, by name, and
# "How the pages are made" comes last.
GUIDE_ORDER = ("which-optimizer", "momentum", "weight-decay", "schedules", "composable")
LAST_GUIDE = "how-pages-are-made"


@dataclass
class Module:
    """One module of the package and its page."""

    path: Path
    dotted: str
    src_uri: str
    infos: list[OptimizerInfo] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.dotted.rpartition(".")[2]

    @property
    def source_name(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def folder(self) -> tuple[str, ...]:
        """The subpackage path inside `annotated_opt` (empty for top-level modules)."""
        parts = self.path.relative_to(PACKAGE).parts[:-1]
        return tuple(parts)


def discover_modules() -> list[Module]:
    """Every module of the package, each with the registry entries whose class it defines."""
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        relative = path.relative_to(ROOT).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            src_uri = "/".join(parts) + "/index.md"
        else:
            src_uri = "/".join(parts) + ".md"
        modules.append(Module(path, ".".join(parts), src_uri))
    by_dotted = {module.dotted: module for module in modules}
    for info in REGISTRY.values():
        module = by_dotted.get(info.module)
        if module is None:
            raise PluginError(f"registry entry {info.name}: its class lives in {info.module}, outside annotated_opt")
        module.infos.append(info)
    return modules


MODULES: list[Module] = []


def module_for(name: str) -> Module | None:
    return next((m for m in MODULES if m.dotted == name), None)


def page_of_optimizer(name: str) -> Module | None:
    info = REGISTRY.get(name.lower())
    return module_for(info.module) if info else None


# ---------------------------------------------------------------------------------------------
# Navigation


def _markdown_pages(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.md") if p.is_file())


def _guide_key(path: Path) -> tuple[int, int, str]:
    if path.stem == LAST_GUIDE:
        return (2, 0, "")
    if path.stem in GUIDE_ORDER:
        return (0, GUIDE_ORDER.index(path.stem), "")
    return (1, 0, path.stem)


def build_nav() -> list:
    r"""Home; the optimizers by family; the machinery, subpackage by subpackage; the guides; other pages."""
    nav: list = [{"Home": "index.md"}]

    families: dict[str, list[OptimizerInfo]] = {}
    for info in REGISTRY.values():
        families.setdefault(info.family, []).append(info)
    optimizers = []
    for name, infos in families.items():
        infos = sorted(infos, key=lambda i: (i.year, list(REGISTRY).index(i.key)))
        entries = [{info.name: module_for(info.module).src_uri} for info in infos]
        optimizers.append({f"{name} family" if len(entries) > 1 else name: entries})
    nav.append({"Optimizers": optimizers})
    nav.append({"Machinery": _machinery_nav()})

    guides = sorted(_markdown_pages(DOCS / "guides"), key=_guide_key) if (DOCS / "guides").is_dir() else []
    if guides:
        nav.append({"Guides": [f"guides/{p.name}" for p in guides]})
    nav += [p.name for p in _markdown_pages(DOCS) if p.name != "index.md"]
    return nav


# The subpackages in the order a reader meets them: what every optimizer stands on first.
SUBPACKAGE_ORDER = ("core", "schedules", "composable", "toys")


def module_title(module: Module) -> str:
    r"""
    A module's title in the menu: the first heading of its notes as plain text, up to a colon
    ("Weight decay: decoupled, L2, absolute" is listed as "Weight decay").
    """
    title = annotate(module.path.read_text()).title
    if not title:
        raise PluginError(f"{module.source_name}: its docstring needs a first heading, the title of its page")
    return DOLLAR_TEX.sub(lambda m: plain_math(m.group(1)), title.replace("`", "")).partition(":")[0]


def _machinery_nav() -> list:
    r"""
    The modules that are not optimizers, each under its page's title: the package's own page, then one
    section per subpackage, titled by the first words of its overview.
    """
    package = module_for("annotated_opt")
    entries: list = [{module_title(package): package.src_uri}]
    entries += [{module_title(m): m.src_uri} for m in MODULES if not m.folder and not m.infos and m is not package]
    order = {name: rank for rank, name in enumerate(SUBPACKAGE_ORDER)}
    folders = sorted({m.folder[:1] for m in MODULES if m.folder}, key=lambda f: (order.get(f[0], len(order)), f))
    for folder in folders:
        members = [m for m in MODULES if m.folder[:1] == folder]
        index = next(m for m in members if m.path.name == "__init__.py")
        pages = [{"Overview": index.src_uri}] + [{module_title(m): m.src_uri} for m in members if m is not index]
        entries.append({module_title(index): pages})
    return entries


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    MODULES[:] = discover_modules()
    if config.nav is None:
        config.nav = build_nav()
    return config


# ---------------------------------------------------------------------------------------------
# Generated pages


def plot_files(page: str) -> list[tuple[str, str]]:
    """(path relative to docs, caption) of every plot of `page`, by name."""
    folder = DOCS / PLOTS / page
    plots = []
    for svg in sorted(folder.glob("*.svg")) if folder.is_dir() else []:
        caption_file = svg.with_suffix(".txt")
        caption = caption_file.read_text().strip() if caption_file.is_file() else ""
        if not caption:
            log.warning(f"plot {PLOTS}/{page}/{svg.name} has no caption ({caption_file.name} is missing or empty)")
        plots.append((f"{PLOTS}/{page}/{svg.name}", caption))
    return plots


def coloured_math(module: AnnotatedModule) -> list[str]:
    r"""The formulas of a module's notes that colour a term (`\textcolor`): what differs from the parent."""
    formulas: list[str] = []
    seen: set[str] = set()
    for block in module.notes:
        masked = markdown.mask_code(block)
        for match in re.finditer(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![\\$])\$([^$\n]+?)(?<!\\)\$", masked, re.DOTALL):
            start, end = match.span(1) if match.group(1) is not None else match.span(2)
            tex = block[start:end].strip()
            key = " ".join(tex.split())
            if r"\textcolor" in tex and key not in seen:
                seen.add(key)
                formulas.append(tex)
    # A formula repeated inside a longer one (a comment quoting part of the docstring's) is shown once.
    keys = [" ".join(tex.split()) for tex in formulas]
    return [tex for tex, key in zip(formulas, keys) if not any(key != other and key in other for other in keys)]


# What each optimizer's verification found while this build made its page: a mark and the error.
CERTIFICATES: dict[str, str] = {}
# The verifications of this build, `{key: (summary or error, seconds)}`, all run as the build starts.
VERIFICATIONS: dict[str, tuple[VerificationSummary | str, float]] = {}


def verify_every_optimizer() -> None:
    r"""
    Every optimizer's verification, shared among the machine's cores, one thread each: they are
    independent, each a few seconds, and together they were most of the time `mkdocs build` takes.
    """
    # MkDocs restores sys.path after loading this hook; references written for the tests
    # (`tests.references...`) are imported from this checkout, in the processes that run the checks too.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    keys = [info.key for info in REGISTRY.values() if info.reference is not None]
    VERIFICATIONS.update(zip(keys, map_on_cores(verify_named, keys, [BUILD_SEEDS] * len(keys))))


def verification_markdown(info: OptimizerInfo) -> str:
    if info.reference is None:
        return ("No independent implementation is registered to run at build time; the tests show how "
                f"{info.name} is checked.")
    summary, seconds = VERIFICATIONS[info.key]
    if isinstance(summary, str):  # the page says what went wrong, and the strict build fails
        log.warning(f"verification of {info.name} could not run: {summary}")
        return f'<span class="ao-fail">✗</span> The verification could not run: `{summary}`'
    log.info(f"verified {info.name} against {info.reference.target} in {seconds:.1f} s: error {summary.error:.1e}")
    if not summary.passed:
        log.warning(f"{info.name} {summary.sentence()}")
    mark = '<span class="ao-pass">✓</span>' if summary.passed else '<span class="ao-fail">✗</span>'
    CERTIFICATES[info.key] = f"{mark} {summary.error:.1e}"
    seeds = ", ".join(str(s) for s in SEEDS)
    return (f"{mark} {info.name} {summary.sentence()}. Run when this page was built, with seed "
            f"{', '.join(str(s) for s in BUILD_SEEDS)}; the tests run seeds {seeds}.")


def facts_markdown(module: Module, annotated: AnnotatedModule) -> str:
    """The card at the top of an optimizer page."""
    parts = ['<div class="ao-facts" markdown>', ""]
    for info in module.infos:
        if len(module.infos) > 1:
            parts += [f"### {info.name}", ""]
        parts += ["Paper", f":   [{info.paper}]({info.url}), {info.year}", ""]
        parent = page_of_optimizer(info.parent) if info.parent else None
        if info.parent and parent is not None:
            link = f"[{info.parent}]({markdown.relative(parent.src_uri, module.src_uri)})"
        else:
            link = info.parent
        formulas = coloured_math(annotated)
        if info.parent is None:
            parts += ["Idea from", f":   none: {info.name} is the root of the {info.family} family", ""]
        elif formulas:
            parts += ["Idea from", f":   {link}; what changes is coloured:", ""]
            for tex in formulas:
                parts += ["    $$", *("    " + line for line in tex.splitlines()), "    $$", ""]
        else:
            parts += ["Idea from", f":   {link}; the notes below say what changes", ""]
        parts += ["Code extends", f":   {code_parent_link(info, module)}", ""]
        plural = "tensor" if info.state_tensors == 1 else "tensors"
        parts += ["State", f":   {info.state_tensors} {plural} the size of the parameter: "
                  f"{info.state_bytes_per_param} bytes per float32 parameter", ""]
        parts += ["Verified", f":   {verification_markdown(info)}", ""]
        if plot_files(info.key):
            parts += ["Plots", f":   [below](#plots-{info.key})", ""]
    parts += ["</div>"]
    return "\n".join(parts)


def code_parent_link(info: OptimizerInfo, module: Module) -> str:
    r"""The class `info`'s class extends: another optimizer's (linked), or a base of the machinery."""
    base = family.code_parent(info, list(REGISTRY.values()))
    if base is not None:
        return f"[{base.cls.__name__}]({markdown.relative(module_for(base.module).src_uri, module.src_uri)})"
    direct = info.cls.__mro__[1]
    owner = module_for(direct.__module__)
    name = f"`{direct.__name__}`"
    return f"[{name}]({markdown.relative(owner.src_uri, module.src_uri)})" if owner else name


def plots_markdown(module: Module) -> str:
    parts = []
    for info in module.infos:
        parts += [f"## Plots of {info.name} {{ #plots-{info.key} }}", ""]
        plots = plot_files(info.key)
        for path, caption in plots:
            parts += [markdown.figure_markdown(markdown.relative(path, module.src_uri), caption), ""]
        if not plots:
            parts += [f"There are no plots of {info.name} yet.", ""]
    return "\n".join(parts)


def code_elsewhere(page: Module):
    r"""For an algorithm box: the link to, and the line of, a piece of code in another module's page."""

    def find(file: str, code: str) -> tuple[str, int]:
        target = next((m for m in MODULES if m.path == page.path.parent / file), None)
        if target is None:
            raise symbols.NotationError(f"the algorithm box points into {file}, which is no module beside it")
        anchor, number = symbols.row_of(annotate(target.path.read_text()), code)
        # Both pages are served as folders (`annotated_opt/adam/`).
        url = posixpath.relpath(target.src_uri.removesuffix(".md"), page.src_uri.removesuffix(".md"))
        return f"{url}/#{anchor}", number

    return find


# The notation of each module page, by the page's path: its math and its code are linked through it.
PAGE_SYMBOLS: dict[str, list[symbols.Symbol]] = {}


def module_page(module: Module) -> str:
    source = module.path.read_text()
    annotated = annotate(source)
    for line in annotated.cooked_docstrings:
        log.warning(f"{module.source_name}:{line}: a docstring with a backslash is not raw (write r\"\"\"): "
                    "Python reads it differently from what the page shows")
    try:
        notation = symbols.module_symbols(annotated)
        symbols.check_symbols(notation, source)
        for section in annotated.sections:
            elsewhere = code_elsewhere(module)
            section.notes = [symbols.algorithm_boxes(block, annotated, elsewhere) for block in section.notes]
    except symbols.NotationError as error:
        raise PluginError(f"{module.source_name}: {error}") from None
    PAGE_SYMBOLS[module.src_uri] = notation
    if module.infos:
        title = annotated.title or module.infos[0].name
        header, footer = facts_markdown(module, annotated), plots_markdown(module)
    else:
        title = annotated.title or f"`{module.dotted}`"
        header = footer = ""
    # The page is served as a folder (`annotated_opt/adam/`), the source beside it (`annotated_opt/adam.py`).
    source_url = posixpath.relpath(module.source_name, module.src_uri.removesuffix(".md").removesuffix("/index"))
    page = markdown.module_markdown(annotated, title=title, source_name=module.source_name, source_url=source_url,
                                    header=header, footer=footer)
    return page


def katex_assets() -> Iterable[tuple[str, Path]]:
    """(site path, file) of KaTeX's stylesheet and fonts, from the pinned npm package."""
    package = KATEX_DIST.parent / "package.json"
    if not package.is_file():
        raise PluginError("KaTeX's stylesheet and fonts are missing: run `npm ci` (make site does)")
    version = json.loads(package.read_text())["version"]
    if version != KATEX_VERSION:
        raise PluginError(f"node_modules has KaTeX {version}, but the math is rendered by KaTeX {KATEX_VERSION}: "
                          "run `npm ci`")
    yield "assets/katex/katex.min.css", KATEX_DIST / "katex.min.css"
    for font in sorted((KATEX_DIST / "fonts").iterdir()):
        yield f"assets/katex/fonts/{font.name}", font


def on_files(files: Files, config: MkDocsConfig) -> Files:
    start = time.perf_counter()
    verify_every_optimizer()
    for module in MODULES:
        if files.get_file_from_path(module.src_uri) is not None:
            raise PluginError(f"docs/{module.src_uri} would hide the generated page of {module.source_name}")
        files.append(File.generated(config, module.src_uri, content=module_page(module)))
    for site_path, path in katex_assets():
        files.append(File.generated(config, site_path, abs_src_path=str(path)))
    # The sources of the package and of the tests, so that each page links to its file and the
    # certificates to the checks they describe.
    for path in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py")]):
        if "__pycache__" not in path.parts:
            files.append(File.generated(config, path.relative_to(ROOT).as_posix(), abs_src_path=str(path)))
    for old, new in annotated_opt.MOVED_MODULES.items():
        files.append(File.generated(config, _page_folder(old) + "index.html", content=redirect_page(old, new)))
    log.info(f"generated {len(MODULES)} module pages in {time.perf_counter() - start:.1f} s")
    return files


def _page_folder(dotted: str) -> str:
    """The folder a module's page is served from, `annotated_opt/core/base/` for `core.base`."""
    return "annotated_opt/" + dotted.replace(".", "/") + "/"


def redirect_page(old: str, new: str) -> str:
    r"""
    A module that moved into a subpackage keeps its old address: a small page there sends the browser
    (and a search engine, through the canonical link) to the new one, so links made earlier still work.
    """
    target = posixpath.relpath(_page_folder(new), _page_folder(old)) + "/"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Moved</title>'
            '<link rel="icon" href="data:,">'
            f'<link rel="canonical" href="{target}"><meta http-equiv="refresh" content="0; url={target}">'
            f'</head><body>This page moved to <a href="{target}">{target}</a>.</body></html>\n')


# ---------------------------------------------------------------------------------------------
# Every page


def optimizer_table(page_src_uri: str) -> str:
    rows = ["| Optimizer | Family | Paper | Parent | State per parameter | Verified against |",
            "|---|---|---|---|---:|---|"]
    for info in REGISTRY.values():
        module = module_for(info.module)
        name = f"[{info.name}]({markdown.relative(module.src_uri, page_src_uri)})"
        parent_page = page_of_optimizer(info.parent) if info.parent else None
        if parent_page is not None:
            parent = f"[{info.parent}]({markdown.relative(parent_page.src_uri, page_src_uri)})"
        else:
            parent = info.parent or "none"
        reference = f"`{info.reference.target}`" if info.reference else "the tests"
        paper = info.paper.replace("|", "\\|")
        rows.append(f"| {name} | {info.family} | [{paper}]({info.url}), {info.year} | {parent} "
                    f"| {info.state_bytes_per_param} bytes | {reference} |")
    return "\n".join(rows)


def included_markdown(page: Page, path: str) -> str:
    """The text of `docs/<path>`, a page fragment written by a plot script (the gallery, the results)."""
    fragment = DOCS / path
    if not fragment.is_file():
        raise PluginError(f"docs/{page.file.src_uri}: the marker <!-- include: {path} --> names docs/{path}, "
                          "which does not exist (run `python scripts/make_plots.py`)")
    return fragment.read_text()


def plot_figure(page: Page, plot_page: str, slug: str) -> str:
    svg = DOCS / PLOTS / plot_page / f"{slug}.svg"
    if not svg.is_file():
        raise PluginError(f"docs/{page.file.src_uri}: the marker <!-- plot: {plot_page}/{slug} --> names "
                          f"docs/{PLOTS}/{plot_page}/{slug}.svg, which does not exist (run "
                          "`python scripts/make_plots.py`, or fix the name)")
    caption_file = svg.with_suffix(".txt")
    caption = caption_file.read_text().strip() if caption_file.is_file() else ""
    return markdown.figure_markdown(markdown.relative(f"{PLOTS}/{plot_page}/{slug}.svg", page.file.src_uri), caption)


def link_resolver(page: Page, files: Files):
    """Resolve `name.md` links: existing pages as they are, then module pages by name."""
    generated = page.file.src_uri.startswith("annotated_opt/")
    here = page.file.src_uri.rpartition("/")[0]

    def resolve(target: str) -> str | None:
        if "://" in target or target.startswith("/"):
            return target
        joined = _normalise(f"{here}/{target}" if here else target)
        if files.get_file_from_path(joined) is not None:
            return target
        stem = target.rpartition("/")[2][: -len(".md")]
        candidates = [m for m in MODULES if m.name == stem or m.src_uri.endswith("/" + target)]
        candidates.sort(key=lambda m: len(m.folder))
        if candidates:
            return markdown.relative(candidates[0].src_uri, page.file.src_uri)
        if generated and "/" not in target:
            # A module that links a module not written yet: keep the words, drop the link.
            log.info(f"{page.file.src_uri}: no module page {target} yet; its link is shown as text")
            return None
        return target

    return resolve


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def certificate_table(page_src_uri: str) -> str:
    r"""
    Every optimizer, what it is checked against, how closely, and the tests that check it. The tests'
    sources are served with the site (under `tests/`), so each row links to the file that holds them.
    """
    rows = ["| Optimizer | Checked against | Tolerance (float64) | At this build | Tests |",
            "|---|---|---:|---|---|"]
    for info in REGISTRY.values():
        page = f"[{info.name}]({markdown.relative(module_for(info.module).src_uri, page_src_uri)})"
        tests = [f"[`{path.name}`]({markdown.relative(f'tests/{path.name}', page_src_uri)})"
                 for path in tests_of(info)]
        if info.reference is None:
            rows.append(f"| {page} | the properties its paper states, by hand-derived steps | | not run | "
                        f"{', '.join(tests)} |")
            continue
        rows.append(f"| {page} | {reference_description(info, page_src_uri)} | {info.reference.tolerance:.0e} "
                    f"| {CERTIFICATES.get(info.key, 'not run')} | {', '.join(tests)} |")
    return "\n".join(rows)


def reference_description(info: OptimizerInfo, page_src_uri: str) -> str:
    """`torch.optim.Adam`, a package with its installed version, or a reference in this repository."""
    target = info.reference.target
    package = target.partition(".")[0]
    if info.reference.is_torch_optim:
        return f"`{target}` (torch {version_of('torch')})"
    if package == "tests":
        path = "/".join(target.split(".")[:-1]) + ".py"
        link = markdown.relative(path, page_src_uri)
        return f"`{target.rpartition('.')[2]}` in [`{path}`]({link}), written from the authors' code"
    return f"`{target}` ({package} {version_of(package)})"


def version_of(package: str) -> str:
    from importlib import metadata

    for name in (package, package.replace("_", "-")):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "version unknown"


def tests_of(info: OptimizerInfo) -> list[Path]:
    """The test files that name `info`'s class: its own checks and the shared batteries."""
    name = re.compile(rf"\b{re.escape(info.cls.__name__)}\b|[\"']{re.escape(info.key)}[\"']")
    found = [path for path in sorted((ROOT / "tests").glob("test_*.py")) if name.search(path.read_text())]
    shared = [ROOT / "tests" / name for name in ("test_reference_equivalence.py", "test_properties.py")]
    return found + [path for path in shared if path not in found]


FAMILY_TREE_MARKER = re.compile(r"^[ \t]*<!--[ \t]*family-tree[ \t]*-->[ \t]*$", re.MULTILINE)
CERTIFICATES_MARKER = re.compile(r"^[ \t]*<!--[ \t]*certificates[ \t]*-->[ \t]*$", re.MULTILINE)


def family_tree(page_src_uri: str) -> str:
    def link(info: OptimizerInfo) -> str:
        return markdown.relative(module_for(info.module).src_uri, page_src_uri).removesuffix(".md") + "/"

    prefix = "../" if page_src_uri.endswith(".md") and not page_src_uri.endswith("index.md") else ""
    svg = family.family_tree_svg(list(REGISTRY.values()), lambda info: prefix + link(info))
    return f'<div class="ao-family-tree-frame">{svg}</div>'


def on_page_markdown(source: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    # The names of the optimizers a page defines, as its search tags: the theme's search weighs a tag
    # above a title, and searches every word as a prefix, so that without them "adam" ranked Adamax,
    # whose title names Adam as well, above Adam. Without the tags plugin they are not shown.
    module = next((m for m in MODULES if m.src_uri == page.file.src_uri and m.infos), None)
    if module is not None:
        page.meta["tags"] = [info.name for info in module.infos]
    source = TABLE_MARKER.sub(lambda _: optimizer_table(page.file.src_uri), source)
    source = CERTIFICATES_MARKER.sub(lambda _: certificate_table(page.file.src_uri), source)
    source = FAMILY_TREE_MARKER.sub(lambda _: family_tree(page.file.src_uri), source)
    # Fragments first: they carry plot markers of their own.
    source = INCLUDE_MARKER.sub(lambda m: included_markdown(page, m.group(1)), source)
    source = markdown.replace_plot_markers(source, lambda plot_page, slug: plot_figure(page, plot_page, slug))
    source = markdown.rewrite_links(source, link_resolver(page, files))
    return markdown.isolate_display_math(source)


PERMALINK = r'\1<a class="ao-permalink" href="#\2" title="Link to this section" data-search-exclude>¶</a>'
INLINE_TEX = re.compile(r"\\\((.*?)\\\)")
INLINE_TEX_AND_PUNCTUATION = re.compile(r"\\\((.*?)\\\)([,.;:]?)")
DOLLAR_TEX = re.compile(r"\$([^$]+)\$")
ROW = re.compile(r'(<div class="ao-row[^"]*" id="([^"]+)">)')


def on_page_content(content: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    notation = PAGE_SYMBOLS.get(page.file.src_uri, [])
    try:
        content = render_math(content, lambda tex: symbols.tag_tex(tex, notation))
        for item in _walk_toc(page.toc):
            if "\\(" in item.title:
                item.title = INLINE_TEX_AND_PUNCTUATION.sub(lambda m: _unbroken_math(*m.groups()), item.title)
        if page.title and "\\(" in page.title:
            # The title goes into <title> and the navigation as text: the math's characters, no markup.
            page.title = INLINE_TEX.sub(lambda m: plain_math(html.unescape(m.group(1))), page.title)
    except MathError as error:
        raise PluginError(f"docs/{page.file.src_uri}: {error}") from None
    return symbols.tag_code(ROW.sub(PERMALINK, content), notation)


def _unbroken_math(tex: str, punctuation: str) -> str:
    r"""
    Math in a navigation entry, kept on one line with the punctuation after it: the browser may break a
    line after the formula's box, which left "$|\Delta\theta| \lesssim \eta$" at the end of one line
    and its comma at the start of the next.
    """
    return f'<span class="ao-unbroken">{render_tex(html.unescape(tex), False)}{punctuation}</span>'


def _walk_toc(items):
    for item in items:
        yield item
        yield from _walk_toc(item.children)
