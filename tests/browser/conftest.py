"""Fixtures for the browser test of the built site (``make check-site``).

These tests need a built site and Debian's Chromium; they are not part of ``make test``
(pytest does not recurse into this folder unless it is named on the command line).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--site-dir", default="_build/html", help="the built site to check")
    parser.addoption("--artefacts", default="_build/site-check",
                     help="where screenshots and the report go")
    parser.addoption("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                     help="the Chromium executable")


@pytest.fixture(scope="session")
def site_dir(request) -> Path:
    path = Path(request.config.getoption("--site-dir")).resolve()
    if not (path / "index.html").is_file():
        pytest.fail(f"no built site at {path}: run `make html` first")
    return path


@pytest.fixture(scope="session")
def artefacts(request) -> Path:
    path = Path(request.config.getoption("--artefacts")).resolve()
    (path / "screenshots").mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def server(site_dir):
    """Serve the site on an ephemeral localhost port for the whole session."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="session")
def browser(request):
    playwright = pytest.importorskip("playwright.sync_api")
    executable = request.config.getoption("--chromium")
    if not Path(executable).is_file():
        pytest.fail(f"Chromium not found at {executable}: run `make check-site` (installs it)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        yield b
        b.close()
