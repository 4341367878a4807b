"""report.html in a real browser: every figure decodes and the page requests nothing.

Runs Debian's ``chromium`` headless on a copy of the report into which the test
injects a small inline script. On ``load`` the script records each image's
natural size, every resource the page fetched (``performance`` entries: only
``data:`` URIs are allowed) and every request the page's Content-Security-Policy
refused (``securitypolicyviolation`` events), and writes them as JSON into a
``data-check`` attribute of <body>; ``--dump-dom`` prints the DOM, which the test
parses. The report's own CSP is kept except for allowing the injected script.
Host names resolve nowhere (``--host-resolver-rules``), so nothing can leave the
machine even if the page tried; the page's attempt would still be recorded.

Two control pages prove the harness can fail: a broken and a remote image must
be reported as such.

Skipped only when chromium is missing and CI is not set; with CI=true a missing
browser is a failure, so CI cannot go green without running it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sparsebench.report.html import CONTENT_SECURITY_POLICY

# The report's policy plus the one inline script the test injects.
TEST_POLICY = CONTENT_SECURITY_POLICY + "; script-src 'unsafe-inline'"

CHECK_SCRIPT = """<script>
(function () {
  var refused = [];
  document.addEventListener("securitypolicyviolation", function (event) {
    refused.push(event.blockedURI + " (" + event.effectiveDirective + ")");
  });
  window.addEventListener("load", function () {
    var images = Array.prototype.map.call(document.images, function (img) {
      return {complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
              scheme: (img.currentSrc || img.src).split(":")[0]};
    });
    var resources = performance.getEntriesByType("resource").map(function (entry) { return entry.name; });
    document.body.setAttribute("data-check",
      JSON.stringify({images: images, resources: resources, refused: refused}));
  });
})();
</script>"""

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=5000",
]

GOOD_PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
            "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def find_chromium() -> str | None:
    for candidate in (os.environ.get("SPARSEBENCH_CHROMIUM"), "chromium", "/usr/bin/chromium",
                      "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        message = "chromium is not installed (Debian: apt-get install chromium)"
        if running_in_ci():
            pytest.fail(message + "; CI=true, so the browser test must run", pytrace=False)
        pytest.skip(message + "; set CI=true to make this a failure")
    return path


def instrument(page: str) -> str:
    """The page with the test's policy and check script at the very start of <head>."""
    report_policy = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    assert report_policy in page, "report.html should carry its own Content-Security-Policy"
    # The listener must exist before any <img> starts loading, so it goes first in <head>.
    return page.replace(report_policy,
                        f'<meta http-equiv="Content-Security-Policy" content="{TEST_POLICY}">\n'
                        + CHECK_SCRIPT, 1)


def browse(chromium: str, page: str, workdir: Path) -> dict:
    """Load the page in headless chromium and return what the check script recorded."""
    # An otherwise empty folder: a relative link to figures/*.png would fail to load here.
    site = workdir / "site"
    site.mkdir()
    target = site / "report.html"
    target.write_text(page, encoding="utf-8")
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={workdir / 'profile'}", "--dump-dom",
               target.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    match = re.search(r'<body[^>]*\sdata-check="([^"]*)"', done.stdout)
    assert match, f"the check script did not run (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


def test_every_figure_decodes_and_nothing_is_requested(chromium, report_paths, tmp_path):
    page = report_paths["html"].read_text(encoding="utf-8")
    check = browse(chromium, instrument(page), tmp_path)
    images = check["images"]
    assert len(images) >= 4 and len(images) == page.count("<img ")
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["scheme"] == "data", image
    assert all(url.startswith("data:") for url in check["resources"]), check["resources"]
    assert check["refused"] == []


def test_the_harness_sees_broken_and_remote_images(chromium, tmp_path):
    control = (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        "</head><body>"
        f'<img src="{GOOD_PNG}"><img src="data:image/png;base64,AAAA">'
        '<img src="http://192.0.2.1/figure.png"></body></html>')
    check = browse(chromium, instrument(control), tmp_path)
    assert [image["width"] > 0 for image in check["images"]] == [True, False, False]
    assert any("192.0.2.1" in entry for entry in check["refused"] + check["resources"])
