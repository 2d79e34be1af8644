"""The value types every config section's keys use (``config``, ``config_eval``): strict where YAML is lax, finite
numbers, text that keeps a number given for a path or name."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Strict


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Int = Annotated[int, Strict()]  # true or "3" is not an integer
Bool = Annotated[bool, Strict()]  # "yes" or 1 is not true
Number = Annotated[float, BeforeValidator(_number)]  # finite (allow_inf_nan=False)
Text = Annotated[str, Strict(), BeforeValidator(_text)]  # a number given for a path or name is kept as text
SECTION = ConfigDict(extra="forbid", allow_inf_nan=False)
