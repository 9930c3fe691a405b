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
