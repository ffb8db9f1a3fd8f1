"""A CHECKOUT_* setting that does not validate, in one line: the variable and what it takes.

pydantic's own report names the field (`max_retries`), not the variable the operator
set, and spends four lines on each problem. Each problem here reads
`CHECKOUT_MAX_RETRIES=lots: expected a whole number ≥ 0`, whatever the setting.
"""

from __future__ import annotations

import types
from typing import Any, Literal, TypeGuard, Union, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from schemas.ids import escaped

# A value longer than this is cut: the variable's name and the form are what matter.
SHOWN_VALUE_CHARS = 80


def is_settings_error(error: BaseException) -> TypeGuard[ValidationError]:
    from worker.settings import Settings

    return isinstance(error, ValidationError) and error.title == Settings.__name__


def describe_settings_error(error: ValidationError) -> str:
    """Every problem of `Settings()`, `; `-separated, each naming its CHECKOUT_* variable."""
    from worker.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    problems = []
    for detail in error.errors(include_url=False):
        name = str(detail["loc"][0]) if detail["loc"] else ""
        field = Settings.model_fields.get(name)
        variable = f"{prefix}{name}".upper()
        wanted = _validator_message(detail) or (expected(field) if field else detail["msg"])
        problems.append(f"{variable}={shown_value(detail.get('input'))}: {wanted}")
    return "; ".join(problems)


def _validator_message(detail: Any) -> str | None:
    # A field validator's own ValueError already says what the form is.
    if detail["type"] == "value_error":
        return str(detail.get("ctx", {}).get("error", "")) or None
    return None


def shown_value(value: object) -> str:
    """The value as set, without a URL's password or a terminal's control characters."""
    from tasks.cli.errors import mask_password

    text = escaped(mask_password(value if isinstance(value, str) else str(value)))
    return text if len(text) <= SHOWN_VALUE_CHARS else text[:SHOWN_VALUE_CHARS] + "..."


def expected(field: FieldInfo) -> str:
    """What a setting takes, from its type and bounds: `expected a whole number ≥ 0`."""
    kinds = [kind for kind in _alternatives(field.annotation) if kind is not type(None)]
    optional = len(kinds) < len(_alternatives(field.annotation))
    kind = kinds[0] if len(kinds) == 1 else None
    text = _kind(kind) + _bounds(field, kind)
    return f"expected {text}{' (or unset)' if optional else ''}"


def _alternatives(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _kind(kind: Any) -> str:
    if kind is bool:
        return "true or false (also 1/0, yes/no, on/off)"
    if kind is int:
        return "a whole number"
    if kind is float:
        return "a number"
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(kind))
    if get_origin(kind) is tuple:
        return "comma-separated names"
    return "text"


def _bounds(field: FieldInfo, kind: Any) -> str:
    if kind not in (int, float):
        return ""
    # pydantic keeps Field(ge=..., le=...) as annotated-types objects, one per bound.
    limits = {
        name: getattr(bound, name)
        for bound in field.metadata
        for name in _SIGNS
        if getattr(bound, name, None) is not None
    }
    if "ge" in limits and "le" in limits:
        return f" from {limits['ge']} to {limits['le']}"
    return "".join(f" {_SIGNS[name]} {value}" for name, value in limits.items())


_SIGNS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
