"""The book's own Sphinx extension: launch buttons and the repository's address.

1. The Colab launch button opens the notebook generated for Colab, not the MyST source.

tools/colab.py turns each chapter into a notebook that reads well in Colab (citations as
text, links to this website, glued numbers filled in, solutions folded) and the book
workflow publishes those notebooks to the branch ``fmbook_colab_branch`` at the same paths.
sphinx-book-theme builds the launch URL from the repository's main branch; this extension
runs after it (priority 502 > 501) and points the Colab entry at the Colab branch.

2. Pages write ``@REPOSITORY_URL@`` where they need the repository's address (e.g. the
``git clone`` command on the setup page, inside a code block where no MyST substitution
reaches); it is replaced by ``repository.url`` of _config.yml, the one place it is written.
"""

from __future__ import annotations

COLAB_PREFIX = "https://colab.research.google.com/github/"


def _buttons(items):
    for item in items or []:
        yield item
        yield from _buttons(item.get("buttons"))


def colab_branch_url(url: str, branch: str) -> str:
    """``.../github/<org>/<repo>/blob/<any branch>/<path>`` -> the same path on ``branch``."""
    if not url.startswith(COLAB_PREFIX):
        raise ValueError(f"not a Colab GitHub URL: {url}")
    org, repo, blob, _old, path = url[len(COLAB_PREFIX) :].split("/", 4)
    if blob != "blob":
        raise ValueError(f"not a Colab GitHub URL: {url}")
    return f"{COLAB_PREFIX}{org}/{repo}/blob/{branch}/{path}"


def _point_colab_at_branch(app, pagename, templatename, context, doctree):
    for button in _buttons(context.get("header_buttons")):
        if button.get("text") == "Colab" and button.get("url"):
            button["url"] = colab_branch_url(button["url"], app.config.fmbook_colab_branch)


PLACEHOLDER = "@REPOSITORY_URL@"


def _fill_repository_url(app, docname, source):
    url = app.config.html_theme_options.get("repository_url", "").rstrip("/")
    if PLACEHOLDER in source[0]:
        if not url:
            raise ValueError(f"{docname} uses {PLACEHOLDER} but _config.yml has no repository url")
        source[0] = source[0].replace(PLACEHOLDER, url)


def setup(app):
    app.connect("source-read", _fill_repository_url)
    app.add_config_value("fmbook_colab_branch", "colab", "html")
    app.connect("html-page-context", _point_colab_at_branch, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
