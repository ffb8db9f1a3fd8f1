"""The fields a model takes at a location of a validation error, to suggest the one meant.

`closest_field(Command, ("update_session", "updates", "curency"))` is `currency`:
the location is walked through the models' annotations (a discriminated union's tag,
a field, a list's index), and the unknown name is matched against the fields there.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


def closest_field(root: Any, location: Sequence[int | str]) -> str | None:
    """The known field nearest to `location`'s last part (an unknown key), or None."""
    if not location:
        return None
    near = difflib.get_close_matches(str(location[-1]), known_fields(root, location[:-1]), n=1)
    return near[0] if near else None


def known_fields(root: Any, location: Sequence[int | str]) -> list[str]:
    """The field names of the model(s) at `location` under `root`; [] if none is a model."""
    kinds = [root]
    for part in location:
        kinds = [found for kind in kinds for found in _step(kind, part)]
    return sorted({name for kind in kinds for name in _fields(kind)})


def _step(kind: Any, part: int | str) -> list[Any]:
    found = []
    for candidate in _alternatives(kind):
        if isinstance(part, int):
            if get_origin(candidate) in (list, tuple):
                found.append(get_args(candidate)[0])
        elif _is_model(candidate):
            field = candidate.model_fields.get(part)
            if field is not None:
                found.append(field.annotation)
            elif _tag(candidate) == part:  # pydantic's first part in a tagged union
                found.append(candidate)
    return found


def _alternatives(kind: Any) -> list[Any]:
    """`kind` without Annotated and Optional: the types it may be."""
    origin = get_origin(kind)
    if origin is Annotated:
        return _alternatives(get_args(kind)[0])
    if origin in (Union, types.UnionType):
        return [alternative for arg in get_args(kind) for alternative in _alternatives(arg)]
    return [kind]


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return str(get_args(field.annotation)[0])


def _fields(kind: Any) -> list[str]:
    return [
        name
        for candidate in _alternatives(kind)
        if _is_model(candidate)
        for name in candidate.model_fields
    ]
