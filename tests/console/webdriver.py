"""A small W3C WebDriver client (python3 stdlib) for Debian's chromium + chromium-driver.

    with Browser(artifacts) as b:
        b.get("http://127.0.0.1:8080/")
        b.wait_js("return document.querySelector('#jobs') !== null", 10, "jobs table")
        b.screenshot("jobs.png")

Chromium runs headless with a fresh profile and without background networking (the machines
that run the tests have no way out). Browser.available() says whether both binaries are there.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = os.environ.get("KUBEFIT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KUBEFIT_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--force-device-scale-factor=1"]


class WebDriverError(Exception):
    pass


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Browser:
    @staticmethod
    def available():
        return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)

    def __init__(self, artifacts, width=1440, height=900):
        self.artifacts = artifacts
        os.makedirs(artifacts, exist_ok=True)
        self.profile = tempfile.mkdtemp(prefix="kubefit-chromium-")
        self.port = _free_port()
        self.log = open(os.path.join(artifacts, "chromedriver.log"), "a")
        self.proc = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdout=self.log, stderr=self.log)
        self.base = f"http://127.0.0.1:{self.port}"
        end = time.time() + 20
        while True:
            try:
                if self._req("GET", "/status")["value"].get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if time.time() > end:
                self.close()
                raise WebDriverError("chromedriver did not become ready in 20 s")
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "pageLoadStrategy": "normal",
            "goog:chromeOptions": {"binary": CHROMIUM,
                                   "args": FLAGS + [f"--user-data-dir={self.profile}",
                                                    f"--window-size={width},{height}"]},
            "goog:loggingPrefs": {"browser": "ALL"}}}}
        try:
            self.session = self._req("POST", "/session", caps)["value"]["sessionId"]
        except Exception:
            self.close()
            raise

    # -- protocol --
    def _req(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read().decode() or "{}")
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                v = json.loads(text)["value"]
                text = f"{v.get('error')}: {v.get('message', '')[:500]}"
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
            raise WebDriverError(f"{method} {path}: HTTP {e.code}: {text}") from None

    def _s(self, method, path, body=None):
        return self._req(method, f"/session/{self.session}{path}", body)["value"]

    # -- what tests use --
    def get(self, url):
        self._s("POST", "/url", {"url": url})

    def js(self, script, *args):
        """Runs script (a function body: `return ...`) in the page; returns its value."""
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_js(self, script, timeout, what, *args):
        """Polls script until it returns something truthy; returns that. Raises TimeoutError."""
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                last = self.js(script, *args)
                if last:
                    return last
            except WebDriverError as e:
                last = e
            time.sleep(0.2)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last})")

    def resize(self, width, height):
        self._s("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, name):
        path = os.path.join(self.artifacts, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(self._s("GET", "/screenshot")))
        return path

    def console_log(self):
        try:
            return self._req("POST", f"/session/{self.session}/se/log", {"type": "browser"})["value"]
        except WebDriverError:
            return []

    def close(self):
        if getattr(self, "session", None):
            try:
                self._req("DELETE", f"/session/{self.session}", timeout=20)
            except (OSError, WebDriverError):
                pass
            self.session = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
