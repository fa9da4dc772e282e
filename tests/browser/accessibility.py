"""axe-core in the page: `assert_accessible(page)` fails on any serious or critical violation.

axe.min.js comes inside the `axe-playwright-python` wheel (pinned), so the check runs offline.
Call it on a page in the state to check (a dialog open, a menu shown): axe reads what is rendered.
"""

from __future__ import annotations

import json
from typing import Any

from axe_playwright_python.sync_playwright import Axe

# WCAG 2.x A and AA, and axe's best practices (landmarks, one main, headings in order).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
FAILING = ("serious", "critical")

_axe = Axe()


def violations(page: Any, *, impacts: tuple[str, ...] = FAILING) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now, of the given impacts."""
    # Motion off: a badge caught mid-pulse is measured at a colour it only passes through.
    page.emulate_media(reduced_motion="reduce")
    try:
        results = _axe.run(page, options={"runOnly": {"type": "tag", "values": TAGS}})
    finally:
        page.emulate_media(reduced_motion="null")
    found: list[dict[str, Any]] = results.response["violations"]
    return [v for v in found if v["impact"] in impacts]


def report(found: list[dict[str, Any]]) -> str:
    """One line per rule, then the markup of each element at fault."""
    lines = []
    for violation in found:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            lines.append(f"    {json.dumps(node['target'])}: {node['html'][:160]}")
            lines.append(f"      {node.get('failureSummary', '').replace(chr(10), ' ')[:240]}")
    return "\n".join(lines)


def assert_accessible(page: Any, what: str = "") -> None:
    """No serious or critical axe-core violation on the page (or dialog) as it is now."""
    found = violations(page)
    assert not found, f"{what or page.url}: accessibility violations\n{report(found)}"
