"""Python values as the C ABI takes them: checked UTF-8 bytes and option values as text. Its own
module because the session, its configuration and its lifecycle methods all need it."""

from __future__ import annotations

from typing import Optional

from ._errors import InvalidArgument


def _encode(what: str, value: object) -> bytes:
    """UTF-8 bytes for C; the value itself never appears in a message (it may be a secret)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgument(f"{what} contains a NUL character")
    encoded: Optional[bytes]
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        encoded = None  # raised below, outside the handler, so no context carries the value
    if encoded is None:
        raise InvalidArgument(f"{what} cannot be encoded as UTF-8 (it holds a lone surrogate)")
    return encoded


def _option_text(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(
        f"option {key!r} must be a str, int or bool, not {type(value).__name__}"
    )
