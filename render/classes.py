"""ImageNet class names -> logit indices for class objectives (`dream.classes`, `class_()`).

Names match case-insensitively, with spaces, hyphens and underscores alike ("Golden
Retriever" = "golden_retriever"); an integer 0..999 is taken as the index itself. An unknown
name is a UserError with the closest names (difflib), a name shared by two classes ("crane")
asks for the index. Importable without TensorFlow: configuration checks classes up front.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from render.errors import UserError
from render.imagenet_classes import IMAGENET_CLASSES

# what each of the labels that name two classes means (WordNet's glosses, shortened)
SENSES = {134: "the bird", 517: "the machine", 264: "the Welsh corgi", 474: "the sweater",
          638: "tights", 639: "the swimsuit"}


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


_BY_KEY: dict[str, list[int]] = {}
for _i, _name in enumerate(IMAGENET_CLASSES):
    _BY_KEY.setdefault(_key(_name), []).append(_i)


def class_index(value: str | int, key: str = "dream.classes") -> int:
    """The logit index of one class name or number; UserError (with did-you-mean) if none."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UserError(f"{key}: expected ImageNet class names or numbers 0..999, got "
                        f"{value!r}")
    if isinstance(value, int) or value.strip().isdigit():
        index = int(value)
        if not 0 <= index < len(IMAGENET_CLASSES):
            raise UserError(f"{key}: class number {index} out of range 0..999")
        return index
    found = _BY_KEY.get(_key(value))
    if found is None:
        close = difflib.get_close_matches(_key(value), list(_BY_KEY), n=3, cutoff=0.6)
        hint = (f"; did you mean {', '.join(IMAGENET_CLASSES[_BY_KEY[c][0]] for c in close)}?"
                if close else "; names are ImageNet's 1000 labels (goldfish, tabby, ...) or "
                "numbers 0..999")
        raise UserError(f"{key}: unknown ImageNet class {value!r}{hint}")
    if len(found) > 1:
        which = ", ".join(f"{i} {SENSES[i]}" if i in SENSES else str(i) for i in found)
        raise UserError(f"{key}: {value!r} names {len(found)} ImageNet classes ({which}); "
                        "give the number instead")
    return found[0]


def class_indices(values: str | int | Iterable[str | int], key: str = "dream.classes"
                  ) -> tuple[int, ...]:
    """Indices of one or several classes, in order, duplicates dropped; at least one."""
    if isinstance(values, (str, int, float)):  # one value: a float is refused by class_index
        values = [values]  # type: ignore[list-item]
    out: list[int] = []
    for value in values:
        index = class_index(value, key)
        if index not in out:
            out.append(index)
    if not out:
        raise UserError(f"{key}: name at least one ImageNet class (or leave it out)")
    return tuple(out)


def class_name(index: int) -> str:
    """The label of logit `index`."""
    return IMAGENET_CLASSES[index]
