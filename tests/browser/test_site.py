"""The built site works offline in a real browser.

Every page is loaded from a local server with every request to another host blocked, and
must show: no failed or external requests, every equation typeset by MathJax without a TeX
error (no raw ``$$`` left), every image loaded, no console errors.  Search must work with
no network.  Internal links must point at files and anchors that exist.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

SCREENSHOT_PAGES = ("index.html", "chapters/01_conv_arithmetic.html",
                    "chapters/05_softmax.html", "appendix/errata.html")


def _pages(site: Path) -> list[str]:
    skip = {"genindex.html", "search.html", "prf-prf.html"}
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html")
                  if "_static" not in p.parts and "_sources" not in p.parts
                  and p.name not in skip)


def pytest_generate_tests(metafunc):
    if "page" in metafunc.fixturenames:
        site = Path(metafunc.config.getoption("--site-dir")).resolve()
        pages = _pages(site) if site.is_dir() else []
        metafunc.parametrize("page", pages or ["index.html"])


def _visit(browser, server: str, path: str):
    """Load one page with the network blocked; return the page and what went wrong."""
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []

    def route(r):
        if r.request.url.startswith(server) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            problems.append(f"external request: {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda req: problems.append(f"failed request: {req.url}")
            if req.url.startswith(server) else None)
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status}: {resp.url}")
            if resp.status >= 400 else None)
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.goto(f"{server}/{path}", wait_until="load")
    return context, page, problems


def test_page_renders_offline(browser, server, page, artefacts):
    context, pg, problems = _visit(browser, server, page)
    try:
        n_math = pg.evaluate("document.querySelectorAll('.math').length")
        if n_math:
            pg.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise",
                                 timeout=20_000)
            pg.evaluate("MathJax.startup.promise")
            typeset = pg.evaluate(
                "[...document.querySelectorAll('.math')].filter(e => e.querySelector('mjx-container')).length")
            errors = pg.evaluate("[...document.querySelectorAll('mjx-merror')].map(e => e.textContent)")
            assert typeset == n_math, f"{page}: {n_math - typeset} of {n_math} equations not typeset"
            assert not errors, f"{page}: TeX errors {errors[:5]}"
        text = pg.evaluate("document.querySelector('main') ? document.querySelector('main').innerText : ''")
        assert "$$" not in text, f"{page}: raw $$ left in the text"
        broken = pg.evaluate(
            "[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        assert not broken, f"{page}: images that did not load: {broken}"
        if page in SCREENSHOT_PAGES:
            name = page.replace("/", "__").replace(".html", ".png")
            pg.screenshot(path=str(artefacts / "screenshots" / name), full_page=False)
        assert not problems, f"{page}: " + "; ".join(problems[:10])
    finally:
        context.close()


def test_search_works_offline(browser, server):
    context, pg, problems = _visit(browser, server, "search.html?q=convolution")
    try:
        pg.wait_for_selector("#search-results li", timeout=20_000)
        hits = pg.evaluate("document.querySelectorAll('#search-results li').length")
        assert hits > 0
        assert not problems, "; ".join(problems[:10])
    finally:
        context.close()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag in {"img", "script"} and a.get("src"):
            self.links.append(a["src"])
        if tag == "link" and a.get("href") and a.get("rel") != ["canonical"]:
            self.links.append(a["href"])


def test_internal_links(site_dir):
    parsed: dict[Path, _Links] = {}

    def parse(path: Path) -> _Links:
        if path not in parsed:
            p = _Links()
            p.feed(path.read_text(encoding="utf-8", errors="replace"))
            parsed[path] = p
        return parsed[path]

    broken = []
    n_links = 0
    for rel in _pages(site_dir) + ["genindex.html", "search.html"]:
        page = site_dir / rel
        if not page.is_file():
            continue
        for href in parse(page).links:
            url = urlparse(href)
            if url.scheme or href.startswith("//") or href.startswith("mailto:"):
                continue
            n_links += 1
            target, fragment = urldefrag(href)
            target = re.sub(r"\?.*$", "", target)
            dest = (page.parent / unquote(target)).resolve() if target else page
            if not dest.exists():
                broken.append(f"{rel}: {href} (no file)")
            elif fragment and dest.suffix == ".html" and unquote(fragment) not in parse(dest).ids:
                broken.append(f"{rel}: {href} (no anchor)")
    assert n_links > 0
    assert not broken, f"{len(broken)} broken internal links: {broken[:15]}"


def test_errata_filter_and_layout(browser, server):
    """The errata cards show claim, verified value and verdict together, and filter."""
    context, pg, problems = _visit(browser, server, "appendix/errata.html")
    try:
        pg.set_viewport_size({"width": 1200, "height": 900})
        total = pg.evaluate("document.querySelectorAll('div.errata-claim').length")
        assert total > 50
        # within each card, what is claimed, what is verified and the verdict are side by side
        outside = pg.evaluate("""[...document.querySelectorAll('div.errata-claim')].filter(card => {
            const box = card.getBoundingClientRect();
            return [...card.querySelectorAll('dd, .sd-badge')].some(e => {
                const r = e.getBoundingClientRect(); return r.right > box.right + 1; });
        }).length""")
        assert outside == 0, f"{outside} cards have content wider than the card"
        for report, verdict in [("all", "incorrect"), ("004", "all"), ("001", "correct")]:
            pg.select_option("#errata-report", report)
            pg.select_option("#errata-verdict", verdict)
            want = "div.errata-claim" + ("" if report == "all" else f".report-{report}") + \
                   ("" if verdict == "all" else f".verdict-{verdict}")
            expected = pg.evaluate(f"document.querySelectorAll('{want}').length")
            visible = pg.evaluate("[...document.querySelectorAll('div.errata-claim')]"
                                  ".filter(e => e.offsetParent !== null).length")
            assert 0 < visible == expected < total, (report, verdict, visible, expected)
            assert pg.inner_text("#errata-shown").startswith(str(expected))
        assert not problems, "; ".join(problems[:10])
    finally:
        context.close()


def test_landing_page_has_a_card_per_chapter(browser, server, site_dir):
    context, pg, problems = _visit(browser, server, "index.html")
    try:
        n_chapters = len(list((site_dir / "chapters").glob("[0-9][0-9]_*.html"))) - 2  # 00_*
        cards = pg.evaluate("document.querySelectorAll('.chapter-cards .sd-card').length")
        figures = pg.evaluate("[...document.querySelectorAll('.chapter-cards img')]"
                              ".filter(i => i.complete && i.naturalWidth > 0).length")
        assert cards == figures == n_chapters
        assert not problems, "; ".join(problems[:10])
    finally:
        context.close()
