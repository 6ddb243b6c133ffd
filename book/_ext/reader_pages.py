"""Sphinx extension: the book's pages as a reader sees them, online or offline.

* **Colab form titles leave the page.** A solution cell starts with ``#@title Solution 1`` so that Colab
  shows it collapsed under that title (with ``cellView: form``); in the book the cell sits in a collapsed
  block labelled "Solution" already (MyST-NB's ``code_prompt_show``), so the ``#@title`` line is dropped
  from the code the page shows. The notebook itself keeps it.
* **No widget manager where no widget is shown.** Executing a notebook stores the state of its live
  sliders, and MyST-NB then loads require.js and the ipywidgets manager from a CDN on that page (they
  blocked the page for seconds online, and failed offline). The book hides those cells, so a page whose
  body holds no widget view gets neither the state nor the scripts.
* **The Colab badge is served with the book.** The notebooks' first cell links the badge image from
  colab.research.google.com (so that it shows on GitHub and in Jupyter); the book uses a copy in
  ``_static`` so that the page shows it offline too.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_SCRIPTS = ("require.js", "require.min.js", "embed-amd.js", "html-manager")
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
FORM_LINE = re.compile(r"^[ \t]*#@(title|markdown)\b.*\n?", re.MULTILINE)


class DropColabFormLines(SphinxPostTransform):
    """Remove ``#@title`` / ``#@markdown`` lines from the source of notebook code cells."""

    default_priority = 198  # before MyST-NB wraps hidden cells (199)
    formats = ("html",)

    def run(self, **kwargs):
        for container in self.document.findall(nodes.container):
            if container.get("nb_element") != "cell_code_source":
                continue
            for block in container.findall(nodes.literal_block):
                text = block.astext()
                cleaned = FORM_LINE.sub("", text)
                if cleaned != text:
                    block.rawsource = cleaned
                    block.children = [nodes.Text(cleaned)]


class LocalColabBadge(SphinxPostTransform):
    """Point the Colab badge image at the copy in ``_static``."""

    default_priority = 200
    formats = ("html",)

    def run(self, **kwargs):
        depth = self.env.docname.count("/")
        for image in self.document.findall(nodes.image):
            if image.get("uri") == COLAB_BADGE:
                image["uri"] = "../" * depth + "_static/colab-badge.svg"
                image["candidates"] = {"*": image["uri"]}


def _drop_unused_widget_scripts(app, pagename, templatename, context, doctree):
    if WIDGET_VIEW in context.get("body", "") or "script_files" not in context:
        return
    kept = []
    for script in context["script_files"]:
        filename = getattr(script, "filename", None) or ""
        attributes = getattr(script, "attributes", {}) or {}
        if attributes.get("type") == WIDGET_STATE or any(name in filename for name in WIDGET_SCRIPTS):
            continue
        kept.append(script)
    context["script_files"][:] = kept


def setup(app):
    app.add_post_transform(DropColabFormLines)
    app.add_post_transform(LocalColabBadge)
    app.connect("html-page-context", _drop_unused_widget_scripts, priority=901)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# --------------------------------------------------------------------------- the bibliography's labels


def _register_author_year_style():
    """A pybtex style whose labels are the author–year form the text cites with (``Nakanishi, 2025``,
    ``Veličković et al., 2024``), sorted by author and year, so that a reader finds a citation's entry
    under the same words (``bibtex_default_style: authoryear``)."""
    import pybtex.plugin
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle

    def names(entry):
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [" ".join(p.last_names) for p in people if str(p) != "others"]
        if not last:
            return entry.fields.get("organization", entry.key)
        if len(people) > 2 or any(str(p) == "others" for p in people):
            return f"{last[0]} et al."
        return " and ".join(last)

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = [f"{names(e)}, {e.fields.get('year', 'n.d.')}" for e in sorted_entries]
            for i, label in enumerate(labels):
                same = [j for j, other in enumerate(labels) if other == label]
                yield label if len(same) == 1 else label + "abcdefghij"[same.index(i)]

    class AuthorYearStyle(UnsrtStyle):
        default_label_style = AuthorYearLabels
        default_sorting_style = "author_year_title"

    pybtex.plugin.register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


_register_author_year_style()
