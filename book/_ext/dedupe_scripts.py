"""Sphinx extension: drop repeated inline <script> blocks from every page.

sphinx-thebe (loaded by Jupyter Book 1 even with Thebe off) adds its inline configuration
(`const THEBE_JS_URL = ...`) once per `env-before-read-docs` event, and that event fires more than
once in a Jupyter Book build. Sphinx de-duplicates script *files* but not inline bodies, so pages got
the block twice and the second copy raised "Identifier 'THEBE_JS_URL' has already been declared" in
the browser. Keeping the first copy of each identical script is all the fix needs.
"""


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for script in context.get("script_files", []):
        # the same inline script is registered once with filename None and once with ""
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", None) or "", tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    if "script_files" in context:
        context["script_files"][:] = kept


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
