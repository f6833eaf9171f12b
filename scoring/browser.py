"""Open a scoring report in headless Chromium: measure its layout and take a screenshot.

``python -m scoring.browser scoring_results/report.html [--screenshot report.png]`` prints what a
1280-pixel-wide browser window shows: the page's width against the window's, each chart's size
and whether any of its text falls outside it, and each table's width against its box. Exit
status 1 when something overflows, 2 when no Chromium is found (Debian: ``apt-get install
chromium-headless-shell`` or ``chromium``; another binary: ``--chromium PATH`` or the
``ALGOPERF_CHROMIUM`` variable).

The measurement runs in the page: a copy of the report with a small script appended is loaded
with ``--dump-dom``, and the script's findings are read back from the DOM it leaves.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
# Where Debian's packages put them, for a PATH without /usr/bin (e.g. a trimmed CI environment).
DEBIAN_PATHS = (
    "/usr/bin/chromium-headless-shell",
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/bin/chromium",
)

_CHECK = r"""
<script>
(function () {
  var doc = document.documentElement, out = {
    viewport: doc.clientWidth, page_width: doc.scrollWidth, charts: [], tables: []};
  document.querySelectorAll('figure > svg').forEach(function (svg) {
    var box = svg.getBoundingClientRect(), outside = [];
    svg.querySelectorAll('text').forEach(function (t) {
      var b = t.getBoundingClientRect();  // on screen, after transforms (rotated labels)
      if (b.width > 0 && (b.left < box.left - 1 || b.top < box.top - 1 ||
                          b.right > box.right + 1 || b.bottom > box.bottom + 1)) {
        outside.push(t.textContent);
      }
    });
    out.charts.push({id: svg.parentNode.id, width: box.width, height: box.height,
                     left: box.left, right: box.right,
                     series: svg.querySelectorAll('.series').length,
                     drawn: svg.querySelectorAll('.series path, .series rect').length,
                     text_outside: outside});
  });
  document.querySelectorAll('div.table').forEach(function (d) {
    // A header word (text between spaces and <wbr> breaks) on two lines was broken inside it.
    var broken = [];
    d.querySelectorAll('thead th').forEach(function (th) {
      var walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT), node;
      while ((node = walker.nextNode())) {
        var re = /\S+/g, m;
        while ((m = re.exec(node.data))) {
          var range = document.createRange();
          range.setStart(node, m.index);
          range.setEnd(node, m.index + m[0].length);
          var tops = {};
          Array.prototype.forEach.call(range.getClientRects(), function (r) {
            if (r.width > 0) { tops[Math.round(r.top)] = true; }
          });
          if (Object.keys(tops).length > 1) { broken.push(th.textContent); return; }
        }
      }
    });
    out.tables.push({box: d.clientWidth, content: d.scrollWidth, broken_headers: broken});
  });
  var pre = document.createElement('pre');
  pre.id = 'layout-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


class BrowserError(RuntimeError):
    """Chromium is missing or failed."""


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium binary: `explicit`, ``$ALGOPERF_CHROMIUM``, the first on PATH, or Debian's."""
    for name in (explicit, os.environ.get("ALGOPERF_CHROMIUM"), *CANDIDATES, *DEBIAN_PATHS):
        if name and (path := shutil.which(name)):
            return path
    return None


def _chromium(binary: str, args: list[str], timeout: float = 120) -> str:
    cmd = [
        binary,
        "--headless",
        "--no-sandbox",  # containers run as root
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        *args,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise BrowserError(f"{binary}: no answer within {timeout:.0f}s") from e
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise BrowserError(f"{binary} exited with {proc.returncode}: {tail}")
    return proc.stdout


def measure(report: str | os.PathLike, binary: str, width: int = 1280) -> dict:
    """Layout of `report` in a `width`-pixel window (see the module docstring)."""
    text = Path(report).read_text(encoding="utf-8")
    if "</body>" not in text:
        raise BrowserError(f"{report}: not an HTML report (no </body>)")
    with tempfile.TemporaryDirectory(prefix="report_check_") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(text.replace("</body>", _CHECK + "</body>", 1), encoding="utf-8")
        dom = _chromium(binary, [f"--window-size={width},900", "--dump-dom", page.as_uri()])
    m = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    if m is None:
        raise BrowserError(f"{report}: the layout script did not run")
    return json.loads(html.unescape(m.group(1)))


def problems(layout: dict) -> list[str]:
    """What overflows or failed to draw, one line each (empty: all fits)."""
    out = []
    if layout["page_width"] > layout["viewport"]:
        out.append(f"page is {layout['page_width']}px wide in a {layout['viewport']}px window")
    for c in layout["charts"]:
        if c["width"] < 300 or c["height"] < 150:
            out.append(f"chart {c['id']} is only {c['width']:.0f}x{c['height']:.0f}px")
        if c["right"] > layout["viewport"] + 0.5 or c["left"] < -0.5:
            out.append(f"chart {c['id']} extends beyond the window")
        if c["drawn"] < c["series"]:
            out.append(f"chart {c['id']}: {c['series'] - c['drawn']} series without a shape")
        if c["text_outside"]:
            out.append(f"chart {c['id']}: text outside the chart: {c['text_outside'][:3]}")
    for i, t in enumerate(layout["tables"]):
        if t["content"] > t["box"] + 1:
            out.append(f"table {i + 1} needs horizontal scrolling ({t['content']}/{t['box']}px)")
        for header in t.get("broken_headers", []):
            out.append(f"table {i + 1}: header {header!r} breaks inside a word")
    return out


def screenshot(
    report: str | os.PathLike, png: str | os.PathLike, binary: str, width: int = 1280, height=2400
) -> Path:
    """A `width` x `height` screenshot of the top of `report`."""
    png = Path(png).resolve()
    _chromium(
        binary, [f"--window-size={width},{height}", f"--screenshot={png}", Path(report).as_uri()]
    )
    if not png.is_file():
        raise BrowserError(f"{binary} wrote no screenshot")
    return png


def main(argv: list[str] | None = None) -> int:
    """``python -m scoring.browser``; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("report", type=Path, help="report.html written by algoperf score")
    p.add_argument("--screenshot", type=Path, help="also save a PNG screenshot here")
    p.add_argument("--width", type=int, default=1280, help="window width in pixels")
    p.add_argument("--height", type=int, default=2400, help="screenshot height in pixels")
    p.add_argument("--chromium", help="Chromium binary (default: $ALGOPERF_CHROMIUM or PATH)")
    args = p.parse_args(argv)
    binary = find_chromium(args.chromium)
    if binary is None:
        print(
            "error: no Chromium found (apt-get install chromium-headless-shell, or --chromium)",
            file=sys.stderr,
        )
        return 2
    try:
        layout = measure(args.report, binary, args.width)
        if args.screenshot:
            screenshot(args.report, args.screenshot, binary, args.width, args.height)
    except (BrowserError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{args.report}: page {layout['page_width']}px in a {layout['viewport']}px window, "
        f"{len(layout['charts'])} charts, {len(layout['tables'])} tables"
    )
    found = problems(layout)
    for line in found:
        print(f"overflow: {line}")
    if not found:
        print("everything fits")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
