"""nbval settings for the chapters (pytest --nbval notebooks).

`text/html` outputs are pre-rendered sliders (matplotlib `to_jshtml`), whose HTML carries random element
ids and embedded PNG frames: nbval checks that such an output is there, not its bytes. The numbers behind
every figure are checked by `assert`s in the notebooks themselves. (nbval already skips image/png.)
"""


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("text/html",)
