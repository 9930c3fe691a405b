"""Build the site into a folder and serve it on 127.0.0.1, for the browser tests and the screenshots."""

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


# The tests train the results page's tasks for a tenth of their length: every table, figure and page is
# made and checked as `make site` makes it, and the results' runs take 41 s instead of 262 s on a 2-core
# machine (at full length they were two thirds of the tests' site build). The pages say how long they ran.
TEST_TASK_LENGTH_SCALE = 0.1


def build_site(site_dir: Path) -> None:
    """Make the plots, then `mkdocs build --strict` into `site_dir`; raise with mkdocs' output if it fails."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "scripts/make_plots.py", "--task-length-scale", str(TEST_TASK_LENGTH_SCALE)],
                   cwd=ROOT, check=True, env=env)
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
                            cwd=ROOT, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(site_dir: Path) -> Iterator[str]:
    """Serve `site_dir` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(QuietHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def page_paths(site_dir: Path) -> list[str]:
    """The URL path of every page of the built site (`""` for the home page)."""
    paths = []
    for index in sorted(site_dir.rglob("index.html")):
        relative = index.parent.relative_to(site_dir).as_posix()
        if relative.split("/")[0] in ("assets", "search"):
            continue
        # The old address of a moved page only sends the browser on (its test is the redirect's own).
        if 'http-equiv="refresh"' in index.read_text(errors="ignore")[:600]:
            continue
        paths.append("" if relative == "." else relative + "/")
    return paths
