"""nbval settings for the chapters (pytest --nbval notebooks).

Two rules on top of nbval's strict comparison of every code cell's stored output:

* `text/html` outputs are pre-rendered sliders (matplotlib `to_jshtml`), whose HTML carries random element
  ids and embedded PNG frames: nbval checks that such an output is there, not its bytes. The numbers behind
  every figure are checked by `assert`s in the notebooks themselves. (nbval already skips image/png.)

* Cells tagged ``nbval-approx`` print numbers that come from *trained* models. Training is deterministic on
  one machine, but CPU kernels take other vector code paths (other summation orders) on other processors,
  and a few hundred optimiser steps carry those last bits into the second or third decimal. So in these
  cells the text around the numbers must match (spacing aside: numpy pads columns to the widest number),
  integers must match exactly, and every decimal number may differ from the stored one by at most
  ``max(ABS_TOL, REL_TOL·|stored|)`` (0.05, or 3 % for numbers above 5/3). The claims the prose makes about
  these numbers (orderings, thresholds) are the notebooks' own ``assert``s, which hold on every machine.
  Cells with exact outputs (closed forms, seeded sampling, configurations) stay untagged, and so strict.
"""

from __future__ import annotations

import copy
import re

from nbval.plugin import IPyNbCell

APPROX_TAG = "nbval-approx"
ABS_TOL = 0.05
REL_TOL = 0.03

# a decimal number (kept whole, with its sign) or an integer; words like "L" or "×" stay in the text
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+|(?<![\w.])-?\d+(?![\w.])")


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("text/html",)


def numbers_close(stored: str, fresh: str) -> bool:
    """Whether two numbers printed in the same place agree: integers exactly, decimals within the tolerance."""
    if "." not in stored or "." not in fresh:
        return stored == fresh
    return abs(float(fresh) - float(stored)) <= max(ABS_TOL, REL_TOL * abs(float(stored)))


def approx_equal(stored: str, fresh: str) -> tuple[bool, str]:
    """Compare two printed texts: same words, same integers, decimals within the tolerance.

    Returns (equal, reason); the reason names the first number out of tolerance.
    """
    stored_parts, fresh_parts = NUMBER.split(stored), NUMBER.split(fresh)
    stored_numbers, fresh_numbers = NUMBER.findall(stored), NUMBER.findall(fresh)
    if _words(stored_parts) != _words(fresh_parts) or len(stored_numbers) != len(fresh_numbers):
        return False, "the text around the numbers differs"
    for a, b in zip(stored_numbers, fresh_numbers):
        if not numbers_close(a, b):
            return False, f"stored {a}, computed {b}: beyond max({ABS_TOL}, {REL_TOL}·|stored|)"
    return True, ""


def _words(parts: list[str]) -> list[str]:
    # numpy pads its columns to the widest number, so a last digit can shift the spaces: ignore them
    return [re.sub(r"\s+", "", part) for part in parts]


def _text_fields(outputs):
    """(key, container, field) for every text an output list holds, in nbval's comparison order."""
    for output in outputs:
        if output.get("output_type") == "stream":
            yield output["name"], output, "text"
            continue
        for key, value in output.items():
            if key == "data":
                for mime, text in value.items():
                    if isinstance(text, str) and mime.startswith("text/"):
                        yield mime, value, mime
            elif key not in ("output_type", "metadata", "execution_count") and isinstance(value, str):
                yield key, output, key


_strict_compare = IPyNbCell.compare_outputs


def _compare_outputs(self, test, ref, skip_compare=None):
    """nbval's comparison; in cells tagged ``nbval-approx`` the fresh texts whose numbers agree with the
    stored ones within the tolerance are replaced by the stored texts first, so only real differences fail."""
    if APPROX_TAG in self.cell.metadata.get("tags", ()):
        test = copy.deepcopy(test)
        stored_by_key = {}
        for key, holder, field in _text_fields(ref):
            stored_by_key.setdefault(key, []).append(self.sanitize(holder[field]))
        notes = []
        for key, holder, field in _text_fields(test):
            if stored_by_key.get(key):
                stored = stored_by_key[key].pop(0)
                equal, reason = approx_equal(stored, self.sanitize(holder[field]))
                if equal:
                    holder[field] = stored
                else:
                    notes.append(f"{key}: {reason}")
        if not _strict_compare(self, test, ref, skip_compare):
            self.comparison_traceback.extend(f"[{APPROX_TAG}] {note}" for note in notes)
            return False
        return True
    return _strict_compare(self, test, ref, skip_compare)


IPyNbCell.compare_outputs = _compare_outputs
