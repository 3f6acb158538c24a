"""The Colab launch button opens the notebook generated for Colab, not the MyST source.

tools/colab.py turns each chapter into a notebook that reads well in Colab (citations as
text, links to this website, glued numbers filled in, solutions folded) and the book
workflow publishes those notebooks to the branch ``fmbook_colab_branch`` at the same paths.
sphinx-book-theme builds the launch URL from the repository's main branch; this extension
runs after it (priority 502 > 501) and points the Colab entry at the Colab branch.
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


def setup(app):
    app.add_config_value("fmbook_colab_branch", "colab", "html")
    app.connect("html-page-context", _point_colab_at_branch, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
