"""Headless Chromium (Debian's `chromium` + `chromium-driver`) through Selenium, and
`moldau console` as a process, for the console's browser tests.

Nothing here downloads a browser or a driver: Selenium is pointed at /usr/bin/chromium and
/usr/bin/chromedriver (or whatever `chromium`/`chromedriver` resolve to on PATH); when they are
missing the test skips, or fails under MOLDAU_REQUIRE_ALL=1. Every process started is stopped
by its PID (`ConsoleProcess.close`, `driver.quit()`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from moldau.testing.server_process import _pythonpath
from moldau.testing.tools import need_executable

_START_TIMEOUT_S = 30
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--disable-extensions", "--no-first-run", "--window-size=1300,1000")


def chromium():
    """A Selenium WebDriver on headless Chromium. The caller quits it."""
    browser = need_executable("chromium")
    driver_path = need_executable("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in CHROMIUM_ARGS:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    return driver


class ConsoleProcess:
    """`moldau console` on 127.0.0.1 and a free port; `url` once started."""

    def __init__(self, bootstrap_servers: str, extra: list[str] | None = None):
        self.command = [sys.executable, "-m", "moldau", "console", "--bootstrap-server", bootstrap_servers,
                        "--port", "0", *(extra or [])]
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "ConsoleProcess":
        env = dict(os.environ, PYTHONPATH=_pythonpath())
        # stderr to a file: librdkafka logs every failed reconnect while a cluster is down
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env)
        line = self.process.stdout.readline()
        if "moldau console on " not in line:
            self.close()
            raise RuntimeError(f"moldau console did not start: {line!r} {self.stderr_text()}")
        self.url = line.split(" on ", 1)[1].split(" ", 1)[0].rstrip("/")
        return self

    def close(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(_START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(_START_TIMEOUT_S)
        if self.process.stdout:
            self.process.stdout.close()
        self.stderr.close()

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-2000:].decode(errors="replace")

    def __enter__(self) -> "ConsoleProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for(condition, timeout_s: float = 20.0, interval_s: float = 0.25, what: str = "condition"):
    """Poll `condition()` until it returns something truthy; its value, or AssertionError."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # the page may be between two renders
            last_error = error
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def screenshot(driver, name: str) -> Path:
    """Save the page as NAME.png in build/console-screenshots/, or in $MOLDAU_SCREENSHOTS:
    `MOLDAU_SCREENSHOTS=docs/console` refreshes the pictures docs/console.md shows (not the
    default, so that running the tests leaves the work tree clean)."""
    directory = Path(os.environ.get("MOLDAU_SCREENSHOTS") or
                     Path(__file__).resolve().parents[3] / "build" / "console-screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
