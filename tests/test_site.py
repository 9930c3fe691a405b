"""The site, built for real and opened in headless Chromium over http on 127.0.0.1.

The site is built once (plots, then `mkdocs build --strict`) into a temporary folder and served from
a thread. One browser opens every page and checks what a reader would see: the math rendered, the
notes beside the code (or above it on a phone), no errors, and no request to any other host.

Without `/usr/bin/chromium` these tests are skipped, unless `ANNOTATED_OPT_REQUIRE_BROWSER=1` (set by
CI), which turns the skip into a failure.
"""

import os
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from annotated_opt.core.registry import REGISTRY

from .site_server import CHROMIUM, CHROMIUM_ARGS, build_site, page_paths, serve

REQUIRE_BROWSER = os.environ.get("ANNOTATED_OPT_REQUIRE_BROWSER") == "1"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
# Raw TeX a reader should never see: `$x$`, `$$`, `\(`, `\)`, `\[`.
RAW_MATH = re.compile(r"\$[^\s$][^$]*\$|\$\$|\\\(|\\\)|\\\[")

pytestmark = pytest.mark.xdist_group("site")


def optimizer_pages() -> dict[str, list]:
    """URL path of each optimizer page -> the registry entries it shows."""
    pages: dict[str, list] = {}
    for info in REGISTRY.values():
        parts = info.module.split(".")
        path = "/".join(parts) + "/"
        pages.setdefault(path, []).append(info)
    return pages


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A site already built from this checkout (`ANNOTATED_OPT_BUILT_SITE=site`) spares a rebuild while
    # working on the pages; by default, and in CI, the tests build their own.
    if os.environ.get("ANNOTATED_OPT_BUILT_SITE"):
        return Path(os.environ["ANNOTATED_OPT_BUILT_SITE"])
    site_dir = tmp_path_factory.mktemp("site")
    build_site(site_dir)
    return site_dir


@pytest.fixture(scope="session")
def base_url(site: Path) -> Iterator[str]:
    with serve(site) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is not installed (apt-get install chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as error:
            problem = f"playwright is not installed: {error}"
    if problem:
        if REQUIRE_BROWSER:
            pytest.fail(f"browser tests are required but cannot run: {problem}")
        pytest.skip(problem)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """A browser tab that records, per page, console errors, failed requests and the hosts asked."""

    def __init__(self, browser, base_url: str, viewport: dict, color_scheme: str = "light") -> None:
        self.base_url = base_url
        self.context = browser.new_context(viewport=viewport, color_scheme=color_scheme)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console error: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} ({r.failure})"))
        self.page.on("request", self._check_host)
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))

    def _check_host(self, request) -> None:
        url = urlparse(request.url)
        if url.scheme in ("data", "blob", "about"):
            return
        if url.hostname != "127.0.0.1":
            self.problems.append(f"request to another host: {request.url}")

    def open(self, path: str, wait_until: str = "networkidle") -> list[str]:
        """Open `path`, wait (by default until the network is idle), and return the problems it caused."""
        self.problems = []
        self.page.goto(self.base_url + path, wait_until=wait_until)
        return self.problems

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="session")
def desktop(browser, base_url: str) -> Iterator[Visit]:
    visit = Visit(browser, base_url, DESKTOP)
    yield visit
    visit.close()


@pytest.fixture(scope="session")
def phone(browser, base_url: str) -> Iterator[Visit]:
    visit = Visit(browser, base_url, PHONE)
    yield visit
    visit.close()


VISIBLE_TEXT = """() => {
    const main = document.querySelector('.md-main').cloneNode(true);
    main.querySelectorAll('pre, code, .katex, script, style').forEach(e => e.remove());
    return main.textContent;
}"""

CLIPPED_FORMULAS = """() => [...document.querySelectorAll('.katex-display')]
    .filter(e => e.scrollHeight > e.clientHeight).length"""

FIRST_ROW_BOXES = """() => {
    for (const row of document.querySelectorAll('.ao-row')) {
        const notes = row.querySelector('.ao-notes'), code = row.querySelector('.ao-code');
        if (notes && code && notes.textContent.trim() && code.textContent.trim()) {
            const n = notes.getBoundingClientRect(), c = code.getBoundingClientRect();
            return {notes: [n.left, n.top, n.right, n.bottom], code: [c.left, c.top, c.right, c.bottom]};
        }
    }
    return null;
}"""


def test_the_site_builds_strict(site: Path) -> None:
    """`mkdocs build --strict` passed (the fixture raises otherwise); every module has its page."""
    paths = page_paths(site)
    for info in REGISTRY.values():
        assert "/".join(info.module.split(".")) + "/" in paths
    assert (site / "assets" / "katex" / "katex.min.css").is_file()
    assert any((site / "assets" / "katex" / "fonts").glob("*.woff2"))


@pytest.mark.browser
def test_every_page_renders_its_math_offline_without_errors(site: Path, desktop: Visit) -> None:
    optimizers = optimizer_pages()
    failures = []
    for path in page_paths(site):
        problems = list(desktop.open(path))
        page = desktop.page
        katex = page.locator(".md-content .katex").count()
        if path in optimizers and katex < 1:
            problems.append("no rendered math (.katex) on an optimizer page")
        if page.locator(".katex-error").count():
            problems.append(f"{page.locator('.katex-error').count()} .katex-error elements")
        raw = RAW_MATH.findall(page.evaluate(VISIBLE_TEXT))
        if raw:
            problems.append(f"raw TeX in the visible text: {raw[:5]}")
        for info in optimizers.get(path, []):
            facts = page.locator(".ao-facts").inner_text()
            if info.reference and f"matches {info.reference.target}" not in facts:
                problems.append(f"no verification result for {info.name} in the facts: {facts[:200]!r}")
        failures += [f"/{path}: {problem}" for problem in problems]
    assert not failures, "\n".join(failures)


def module_pages(site: Path) -> list[str]:
    return [p for p in page_paths(site) if p.startswith("annotated_opt/")]


@pytest.mark.browser
def test_notes_are_left_of_the_code_on_a_desktop(site: Path, desktop: Visit) -> None:
    failures = []
    for path in module_pages(site):
        desktop.open(path, wait_until="load")
        boxes = desktop.page.evaluate(FIRST_ROW_BOXES)
        if boxes is None:
            continue
        notes, code = boxes["notes"], boxes["code"]
        if not (notes[2] <= code[0] + 1 and abs(notes[1] - code[1]) < 2 and code[2] - code[0] > notes[2] - notes[0]):
            failures.append(f"/{path}: notes {notes} and code {code} are not side by side")
    assert module_pages(site) and not failures, "\n".join(failures)


@pytest.mark.browser
def test_notes_are_above_the_code_on_a_phone(site: Path, phone: Visit) -> None:
    failures = []
    for path in module_pages(site) + [""]:
        phone.open(path, wait_until="load")
        width = phone.page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if width[0] > width[1]:
            failures.append(f"/{path}: the page scrolls sideways ({width[0]} px wide on a {width[1]} px screen)")
        clipped = phone.page.evaluate(CLIPPED_FORMULAS)
        if clipped:
            failures.append(f"/{path}: {clipped} display formulas are cut off at the top or bottom")
        boxes = phone.page.evaluate(FIRST_ROW_BOXES)
        if boxes is None:
            continue
        notes, code = boxes["notes"], boxes["code"]
        if not (notes[3] <= code[1] + 1 and code[2] - code[0] >= PHONE["width"] - 40):
            failures.append(f"/{path}: notes {notes} are not stacked above code {code}")
    assert not failures, "\n".join(failures)


@pytest.mark.browser
def test_the_dark_mode_toggle_switches_the_palette(desktop: Visit) -> None:
    assert not desktop.open("")
    page = desktop.page

    def scheme() -> tuple[str, str]:
        return page.evaluate("""() => [document.body.getAttribute('data-md-color-scheme'),
                                      getComputedStyle(document.body).backgroundColor]""")

    light = scheme()
    assert light[0] == "default"
    page.locator("form[data-md-component=palette] label:visible").first.click()
    page.wait_for_function("() => document.body.getAttribute('data-md-color-scheme') === 'slate'")
    dark = scheme()
    assert dark[1] != light[1], "the background did not change colour"
    page.locator("form[data-md-component=palette] label:visible").first.click()
    page.wait_for_function("() => document.body.getAttribute('data-md-color-scheme') === 'default'")
    assert scheme() == light


@pytest.mark.browser
def test_an_optimizers_name_finds_its_page_first(desktop: Visit) -> None:
    """
    Typed into the search box, each optimizer's name finds its own page first, also where other names
    begin with it (Adam and Adamax, AdamW; Nero and NeroPlus; SGD and ScheduleFreeSGD) or other titles
    name it (MARS's title names AdamW).
    """
    assert not desktop.open("")
    page = desktop.page
    box = page.locator(".md-search__input")
    first = page.locator(".md-search-result__item > a").first
    wrong = {}
    for info in REGISTRY.values():
        expected = "/" + info.module.replace(".", "/") + "/"
        box.click()
        box.fill("")
        box.press_sequentially(info.name)
        # The results are replaced as each letter arrives: wait until those of the whole name are shown.
        page.wait_for_function(
            """([name]) => {
                const meta = document.querySelector('.md-search-result__meta');
                const link = document.querySelector('.md-search-result__item > a');
                return meta && link && link.href.includes('?h=' + encodeURIComponent(name.toLowerCase()));
            }""", arg=[info.name], timeout=10_000)
        href = urlparse(first.get_attribute("href")).path
        if href != expected:
            wrong[info.name] = href
        page.keyboard.press("Escape")
    assert not wrong, f"search ranks another page first for: {wrong}"


@pytest.mark.browser
def test_search_finds_names_inside_the_code(desktop: Visit) -> None:
    """`addcdiv` finds every optimizer page whose code calls it, not only those whose prose names it."""
    root = Path(__file__).resolve().parents[1]
    calls = re.compile(r"\w\.addcdiv_?\(")
    expected = {"/" + path.relative_to(root).with_suffix("").as_posix() + "/"
                for path in sorted((root / "annotated_opt").rglob("*.py")) if calls.search(path.read_text())}
    assert len(expected) >= 10
    assert not desktop.open("")
    page = desktop.page
    page.locator(".md-search__input").click()
    page.locator(".md-search__input").press_sequentially("addcdiv")
    page.locator(".md-search-result__item > a").first.wait_for(timeout=10_000)
    # The theme shows the results in batches, the next when the list is scrolled to its end.
    found: set[str] = set()
    for _ in range(10):
        links = page.locator(".md-search-result__item > a")
        found = {urlparse(links.nth(i).get_attribute("href")).path for i in range(links.count())}
        page.locator(".md-search__scrollwrap").evaluate("e => e.scrollTo(0, e.scrollHeight)")
        page.wait_for_timeout(200)
    assert not expected - found, f"not found by their code: {sorted(expected - found)}"


READING = """() => {
    const scrolls = [...document.querySelectorAll('.ao-code .highlight')].filter(block =>
        [...block.querySelectorAll('pre, pre > code')].some(e => e.scrollWidth > e.clientWidth + 1)).length;
    const blocks = document.querySelectorAll('.ao-code .highlight').length;
    const wide = [...document.querySelectorAll('.md-content .katex-display')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 60));
    const ids = new Set([...document.querySelectorAll('[id]')].map(e => e.id));
    const links = [...document.querySelectorAll('.ao-algorithm a')].map(a => a.getAttribute('href'));
    return {blocks, scrolls, wide, links, missing: links.filter(h => h.startsWith('#') && !ids.has(h.slice(1)))};
}"""

LINKED_PAIR = """() => {
    const inCode = new Set([...document.querySelectorAll('.ao-code [data-sym]')].map(e => e.dataset.sym));
    const math = [...document.querySelectorAll('.ao-notes .katex [data-sym]')].find(e => inCode.has(e.dataset.sym));
    return math ? math.dataset.sym : null;
}"""


def hover_highlights(page, source: str, target: str) -> int:
    """Hover the first visible `source` element; how many `target` elements light up."""
    element = page.locator(source).first
    element.evaluate("e => e.scrollIntoView({block: 'center'})")
    box = element.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    return page.locator(f"{target}.ao-sym-on").count()


@pytest.mark.browser
def test_code_reads_beside_its_math_on_every_optimizer_page(site: Path, desktop: Visit) -> None:
    """At 1440 px: no code block scrolls sideways (at most 5%), no formula overflows its column, every
    algorithm line links to a row of code, and a symbol and its variables light up together."""
    failures, blocks, scrolling, elsewhere = [], 0, 0, []
    for path in optimizer_pages():
        desktop.open(path, wait_until="load")
        page = desktop.page
        found = page.evaluate(READING)
        blocks, scrolling = blocks + found["blocks"], scrolling + found["scrolls"]
        failures += [f"/{path}: a display formula overflows its column: {text!r}" for text in found["wide"]]
        failures += [f"/{path}: the algorithm box links to {href}, which is no row" for href in found["missing"]]
        if not found["links"]:
            failures.append(f"/{path}: no algorithm box")
        elsewhere += [(path, href) for href in found["links"] if not href.startswith("#")]
        symbol = page.evaluate(LINKED_PAIR)
        if symbol is None:
            failures.append(f"/{path}: no symbol of the math is linked to the code")
            continue
        if not hover_highlights(page, f'.ao-notes .katex [data-sym="{symbol}"]', ".ao-code [data-sym]"):
            failures.append(f"/{path}: hovering the symbol {symbol} highlights no code")
        page.mouse.move(0, 0)
        if not hover_highlights(page, f'.ao-code [data-sym="{symbol}"]', ".katex [data-sym]"):
            failures.append(f"/{path}: hovering a variable of {symbol} highlights no symbol")
    for path, href in elsewhere:
        target, _, anchor = href.partition("#")
        desktop.open(posixpath.normpath(posixpath.join(path, target)) + "/", wait_until="load")
        if not desktop.page.locator(f'[id="{anchor}"]').count():
            failures.append(f"/{path}: the algorithm box links to {href}, which is no row")
    assert scrolling <= 0.05 * blocks, f"{scrolling} of {blocks} code blocks scroll sideways"
    assert not failures, "\n".join(failures)


@pytest.mark.browser
def test_a_tap_pins_a_symbol_on_a_phone(site: Path, phone: Visit) -> None:
    phone.open("annotated_opt/adam/", wait_until="load")
    page = phone.page
    symbol = page.evaluate(LINKED_PAIR)
    page.locator(f'.ao-notes .katex [data-sym="{symbol}"]').first.click()
    assert page.locator(".ao-code .ao-sym-on").count() > 0
    page.locator("h1").first.click()
    assert page.locator(".ao-sym-on").count() == 0
