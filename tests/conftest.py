"""With `ANNOTATED_OPT_REQUIRE_BROWSER=1` (set by CI) a run in which no browser test passed, or one
was skipped, fails: the checks of the site in Chromium must not disappear quietly."""

import os

import pytest

REQUIRE_BROWSER = os.environ.get("ANNOTATED_OPT_REQUIRE_BROWSER") == "1"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not REQUIRE_BROWSER or hasattr(session.config, "workerinput"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return

    def browser_reports(outcome: str) -> list:
        return [r for r in reporter.stats.get(outcome, []) if "browser" in getattr(r, "keywords", {})]

    skipped = browser_reports("skipped")
    passed = [r for r in browser_reports("passed") if r.when == "call"]
    if skipped or not passed:
        reporter.write_line(f"browser tests are required: {len(passed)} passed, {len(skipped)} skipped", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# The fast path (`foreach=True`/`fused=True`) compiles each optimizer's step. Generating inductor's
# kernels takes tens of seconds per optimizer and configuration on a CPU, which across the hundreds of
# configurations these tests run (torch's own among them) would take hours. The tests therefore trace
# the fast path without generating code: the property battery and the drop-in checks, which build a
# fast-path optimizer in thousands of tests, with dynamo's `eager` backend (the same capture and guards,
# the captured graph run as it is); `tests/test_fastpath.py` with `aot_eager` (the in-place updates
# also functionalised, as inductor receives them), and `test_inductor_kernels_equal_readable` through
# inductor itself.
def pytest_configure(config: pytest.Config) -> None:
    from annotated_opt.core import fastpath

    fastpath.BACKEND = "eager"


# `--dist loadgroup` sends the tests marked `xdist_group(name)` to one worker, so that a costly
# session fixture (the built site, the spawned processes) is made once. pytest-xdist marks them by
# appending `@name` to each test's id through `item._nodeid`, which pytest 9 no longer reads (the id
# lives in `item._id`): without this hook every mark is ignored and each worker builds its own site.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                         for mark in item.iter_markers("xdist_group")})
        if groups and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")
