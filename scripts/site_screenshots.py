"""Screenshots of the built site, to look at the pages the way readers will see them.

    python scripts/site_screenshots.py [--site site] [--out screenshots] [--full] [page ...]

Serves the built site (`make site` first) on 127.0.0.1, opens each page (all of them, or those named,
e.g. `annotated_opt/adam/`) in headless Chromium at a desktop and a phone width, in the light and the
dark theme, and saves `<out>/<page>-<desktop|phone>-<light|dark>.png`.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.site_server import CHROMIUM, CHROMIUM_ARGS, page_paths, serve  # noqa: E402

SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", type=Path, default=ROOT / "site")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--full", action="store_true", help="the whole page, not just the first screen")
    parser.add_argument("pages", nargs="*")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    pages = args.pages or page_paths(args.site)
    args.out.mkdir(parents=True, exist_ok=True)
    with serve(args.site) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for scheme in ("light", "dark"):
            for size, viewport in SIZES.items():
                context = browser.new_context(viewport=viewport, color_scheme=scheme)
                tab = context.new_page()
                for path in pages:
                    tab.goto(base_url + path, wait_until="networkidle")
                    name = path.strip("/").replace("/", "_") or "index"
                    tab.screenshot(path=args.out / f"{name}-{size}-{scheme}.png", full_page=args.full)
                context.close()
        browser.close()
    print(f"{len(pages) * 4} screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
