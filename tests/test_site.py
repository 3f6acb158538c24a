"""The built website, as a browser shows it: headless Chromium on the pages of _build/html.

Builds nothing: run `make book` first. The site is served by a local HTTP server on
127.0.0.1, and Chromium is kept off every other host, so these tests also prove that the
pages need nothing from the internet (MathJax included). For the chapter page and a part
landing page they check that

* MathJax has typeset every formula (``mjx-container`` in each math element, no errors),
  and no raw TeX delimiters are left in the text;
* the page requested nothing from any host but the local server (Chromium's net log);
* a screenshot is a real, non-blank picture;

and that the chapter shows its figures and links to Colab.

Needs Debian's ``chromium`` (``apt-get install chromium``). Without it the module is
skipped, or fails when the environment variable CI is set.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from bs4 import BeautifulSoup
from PIL import Image

pytestmark = pytest.mark.site

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
CHROMIUM = Path("/usr/bin/chromium")
CHAPTER = "chapters/3-algorithms/pretraining-gpt.html"
LANDING = "chapters/4-math/index.html"  # a part landing page with display math
DECK = "slides/part-4.html"  # a slide deck (tools/slides.py): reveal.js and MathJax, offline
PAGES = [CHAPTER, LANDING, DECK]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Virtual time lets MathJax finish before the DOM is dumped, however slow the machine.
VIRTUAL_TIME_MS = 20_000
WINDOW = (1280, 2000)


# --- fixtures: the built site, the browser, a local server ---------------------------------


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / CHAPTER).is_file() or not (SITE / LANDING).is_file():
        pytest.fail(
            f"the website is not built ({SITE / CHAPTER} is missing): run `make book` first"
        )
    return SITE


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} is missing: install it with `apt-get install chromium`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


# Appended to a page served as ``page.html?measure``: after layout, it writes what a reader
# would see (sideways scrolling, figure scale, captions, alt text) into the DOM as JSON, which
# ``--dump-dom`` then returns. The page itself is unchanged on disk.
MEASURE_JS = """
<script>
window.addEventListener("load", () => setTimeout(() => {
  const main = document.querySelector("article.bd-article") || document.body;
  const wide = (el) => el.scrollWidth > el.clientWidth + 1;
  const text = (el) => (el.textContent || "").trim().slice(0, 80);
  const shown = (el) => el.offsetParent !== null;
  const figures = [...main.querySelectorAll("figure")].map((f) => {
    const img = f.querySelector("img");
    return {
      caption: text(f.querySelector("figcaption") || f).startsWith("Fig") ?
        text(f.querySelector("figcaption")) : "",
      alt: img ? img.getAttribute("alt") || "" : "",
      scale: img && shown(img) && img.naturalWidth ? img.clientWidth / img.naturalWidth : null,
      shown: img ? img.clientWidth : 0,
    };
  });
  const result = {
    prose: [...main.querySelectorAll("p, li, h1, h2, h3, dd, dt")].filter(shown).filter(wide)
      .map(text),
    code: [...main.querySelectorAll(".cell_input pre, div.highlight pre")].filter(shown)
      .filter((el) => !el.closest(".cell_output")).filter(wide).map(text),
    outputs: [...main.querySelectorAll(".cell_output pre")].filter(wide).length,
    figures: figures,
    page: document.documentElement.scrollWidth > document.documentElement.clientWidth + 1,
  };
  const out = document.createElement("pre");
  out.id = "fmbook-measure";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
}, 500));
</script>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site; records (path, status) of every request instead of printing."""

    log: list[tuple[str, int]]

    def do_GET(self):  # noqa: N802 - the stdlib's name
        path, _, query = self.path.partition("?")
        if query != "measure" or not path.endswith(".html"):
            return super().do_GET()
        body = Path(self.translate_path(path)).read_bytes()
        body = body.replace(b"</body>", MEASURE_JS.encode() + b"</body>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code="-", size="-"):
        self.log.append((self.path, int(code)))

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture(scope="module")
def server(site):
    """A local HTTP server for _build/html; yields (base URL, request log)."""
    log: list[tuple[str, int]] = []
    handler = type("Handler", (_QuietHandler,), {"log": log})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(site))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", log
    finally:
        httpd.shutdown()
        httpd.server_close()


def chromium_args(chromium: Path, profile: Path) -> list[str]:
    return [
        str(chromium),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        # Every host name fails to resolve: a page that needs the internet shows it here,
        # even on a machine that has internet access. (The local server is an IP address.)
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ]


def run_chromium(args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        pytest.fail(f"chromium exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return done


def read_net_log(path: Path) -> list[dict]:
    """Chromium's net log (JSON), tolerating a log that was cut short at exit."""
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = json.loads(text.rstrip(",") + "]}")
    return data.get("events", [])


def page_requests(events: list[dict], base: str) -> list[str]:
    """URLs the page at ``base`` made Chromium fetch (not Chromium's own housekeeping)."""
    site = "http://" + urlparse(base).hostname
    urls = []
    for event in events:
        params = event.get("params") or {}
        url, key = params.get("url"), params.get("network_isolation_key", "")
        if url and key.startswith(site) and params.get("method"):
            urls.append(url)
    return urls


class Rendered:
    """One page as Chromium rendered it: the DOM after scripts ran, and what it fetched."""

    def __init__(self, page: str, dom: str, requests: list[str]):
        self.page, self.dom, self.requests = page, dom, requests
        self.soup = BeautifulSoup(dom, "html.parser")


@pytest.fixture(scope="module")
def rendered(chromium, server, tmp_path_factory) -> dict[str, Rendered]:
    base, _ = server
    result = {}
    for page in PAGES:
        work = tmp_path_factory.mktemp("dom")
        net_log = work / "net-log.json"
        args = chromium_args(chromium, work / "profile")
        done = run_chromium([*args, f"--log-net-log={net_log}", "--dump-dom", f"{base}/{page}"])
        assert "<html" in done.stdout, f"chromium dumped no DOM for {page}: {done.stderr[-2000:]}"
        assert net_log.is_file(), f"chromium wrote no net log for {page}"
        result[page] = Rendered(page, done.stdout, page_requests(read_net_log(net_log), base))
    return result


# --- math -------------------------------------------------------------------------------------


def math_elements(soup: BeautifulSoup) -> list:
    """The elements Sphinx/MyST wrote TeX into (inline and display math)."""
    return soup.select(".math")


@pytest.mark.parametrize("page", PAGES)
def test_mathjax_typesets_every_formula(rendered, page):
    soup = rendered[page].soup
    containers = soup.find_all("mjx-container")
    assert containers, f"{page}: no mjx-container in the DOM, so MathJax did not run"
    formulas = math_elements(soup)
    assert formulas, f"{page}: the page has no math element to test MathJax on"
    untypeset = [el.get_text()[:80] for el in formulas if el.find("mjx-container") is None]
    assert not untypeset, f"{page}: formulas MathJax left as TeX: {untypeset}"
    errors = soup.select("mjx-merror, [data-mjx-error]")
    assert not errors, f"{page}: MathJax reported TeX errors: {[e.get_text() for e in errors]}"


RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{")


@pytest.mark.parametrize("page", PAGES)
def test_no_raw_tex_is_left_in_the_text(rendered, page):
    soup = BeautifulSoup(rendered[page].dom, "html.parser")
    # Code, scripts and MathJax's own output may legitimately contain such characters.
    for tag in soup(["script", "style", "pre", "code", "textarea", "mjx-container"]):
        tag.decompose()
    text = soup.get_text(" ")
    leftovers = [text[max(m.start() - 40, 0) : m.end() + 40] for m in RAW_TEX.finditer(text)]
    assert not leftovers, f"{page}: raw TeX shown to the reader: {leftovers[:5]}"


@pytest.mark.parametrize("page", PAGES)
def test_mathjax_comes_from_the_site_itself(rendered, page):
    scripts = [s["src"] for s in rendered[page].soup.find_all("script", src=True)]
    mathjax = [s for s in scripts if "tex-chtml" in s or "mathjax" in s.lower()]
    assert mathjax, f"{page}: no MathJax script tag"
    for src in mathjax:
        assert "://" not in src, f"{page}: MathJax is loaded from the network: {src}"
        target = (SITE / page).parent / src.split("?")[0]
        assert target.resolve().is_file(), f"{page}: MathJax script {src} is not in the site"


@pytest.mark.parametrize("page", PAGES)
def test_page_fetches_nothing_from_the_internet(rendered, server, page):
    base, _ = server
    requests = rendered[page].requests
    assert any(u.endswith("tex-chtml.js") or "tex-chtml.js?" in u for u in requests), (
        f"{page}: the net log shows no request for MathJax; cannot judge what the page fetched"
    )
    remote = sorted({u for u in requests if not u.startswith(base + "/")})
    assert not remote, f"{page}: the page asked for resources outside the site: {remote}"


# --- figures, links, screenshots ----------------------------------------------------------------


def test_chapter_shows_a_figure(rendered, server):
    _, log = server
    served = {path.split("?")[0]: status for path, status in log}
    shown = []
    for img in rendered[CHAPTER].soup.find_all("img", src=True):
        src = img["src"]
        if src.startswith("data:image/png;base64,"):
            shown.append(src[:40])
        elif src.split("?")[0].endswith(".png"):
            file = ((SITE / CHAPTER).parent / src.split("?")[0]).resolve()
            url_path = "/" + file.relative_to(SITE.resolve()).as_posix()
            is_png = file.is_file() and file.read_bytes()[:8] == PNG_SIGNATURE
            if is_png and served.get(url_path) == 200 and "/_static/" not in url_path:
                shown.append(url_path)
    assert shown, (
        f"{CHAPTER}: no figure (a PNG image from a notebook output) was shown; "
        "does the notebook have stored outputs?"
    )


def test_slide_deck_runs_reveal_offline_and_the_course_guide_links_every_deck(rendered):
    soup = rendered[DECK].soup
    reveal = soup.select_one("div.reveal")
    assert reveal is not None and "ready" in reveal.get("class", []), (
        f"{DECK}: reveal.js did not initialise the deck"
    )
    assert len(soup.select(".slides section")) > 20
    guide = (SITE / "book" / "course-guide.html").read_text(encoding="utf-8")
    for deck in sorted((SITE / "slides").glob("part-*.html")):
        assert f"../slides/{deck.name}" in guide, f"the course guide does not link {deck.name}"


def test_chapter_links_to_its_notebook_on_colab(rendered):
    """The Colab button opens the generated notebook (tools/colab.py) on the Colab branch."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    owner, repo = urlparse(config["repository"]["url"]).path.strip("/").split("/")
    branch = config["sphinx"]["config"]["fmbook_colab_branch"]
    notebook = CHAPTER.removesuffix(".html") + ".ipynb"
    expected = (
        f"{config['launch_buttons']['colab_url'].strip('/')}/github/"
        f"{owner}/{repo}/blob/{branch}/{notebook}"
    )
    links = [a["href"] for a in rendered[CHAPTER].soup.find_all("a", href=True)]
    assert expected in links, f"{CHAPTER}: no Colab launch link {expected}"
    assert (ROOT / notebook).is_file()


@pytest.mark.parametrize("page", PAGES)
def test_screenshot_is_a_real_picture(chromium, server, tmp_path, page):
    base, _ = server
    shot = tmp_path / "page.png"
    run_chromium(
        [*chromium_args(chromium, tmp_path / "profile"), f"--screenshot={shot}", f"{base}/{page}"]
    )
    assert shot.is_file(), f"chromium wrote no screenshot of {page}"
    data = shot.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"the screenshot of {page} is not a PNG"
    with Image.open(shot) as image:
        assert image.size == WINDOW, f"screenshot of {page} is {image.size}, expected {WINDOW}"
        colours = image.convert("RGB").getcolors(maxcolors=WINDOW[0] * WINDOW[1]) or []
    assert len(colours) > 50, f"the screenshot of {page} is nearly blank ({len(colours)} colours)"


# --- what a reader sees: no sideways scrolling, legible numbered figures ------------------------
CHAPTERS = sorted(
    p.relative_to(ROOT).with_suffix(".html").as_posix() for p in ROOT.glob("chapters/*/*.ipynb")
)
# Legibility bar: a figure is shown at no less than 60% of its size (wide grids are split
# into figures of at most about 11 inches, which the content column shows at 60% or more).
MIN_FIGURE_SCALE = 0.6


@pytest.fixture(scope="module")
def measured(chromium, server, tmp_path_factory) -> dict[str, dict]:
    base, _ = server

    def measure(page, work):
        done = run_chromium(
            [*chromium_args(chromium, work / "p"), "--dump-dom", f"{base}/{page}?measure"]
        )
        found = BeautifulSoup(done.stdout, "html.parser").find(id="fmbook-measure")
        assert found is not None, f"{page}: the measuring script did not run"
        return json.loads(found.get_text())

    # Two browsers at a time: one Chromium mostly waits on its own renderer process.
    works = [tmp_path_factory.mktemp("measure") for _ in CHAPTERS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(CHAPTERS, pool.map(measure, CHAPTERS, works), strict=True))


@pytest.mark.parametrize("page", CHAPTERS)
def test_prose_and_code_do_not_scroll_sideways(measured, page):
    m = measured[page]
    assert not m["page"], f"{page}: the whole page scrolls sideways"
    assert not m["prose"], f"{page}: prose wider than the column: {m['prose'][:3]}"
    assert not m["code"], f"{page}: code that scrolls sideways: {m['code'][:3]}"


@pytest.mark.parametrize("page", CHAPTERS)
def test_figures_are_numbered_captioned_described_and_legible(measured, page):
    figures = measured[page]["figures"]
    for figure in figures:
        assert re.match(r"Fig\. \d+\.\d+\.\d+", figure["caption"]), f"{page}: {figure}"
        assert len(figure["alt"]) > 20, f"{page}: a figure without alt text: {figure}"
        assert figure["scale"] is None or figure["scale"] >= MIN_FIGURE_SCALE, (
            f"{page}: figure shown at {figure['scale']:.0%} of its size: {figure['caption']}"
        )
