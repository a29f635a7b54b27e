"""JSON as RFC 8259 has it, for request bodies and the `then` form field.

Python's `json` takes `NaN` and `Infinity`, which pydantic then writes back as `null`: a job
would silently carry other data than was sent. Every way a body can fail to be JSON (those
constants, invalid UTF-8, nesting too deep for the parser, integers too long to convert) is
raised as `json.JSONDecodeError`, which FastAPI answers with a 422 naming the problem
instead of a bare "There was an error parsing the body".

Two more are refused with the place they are at (`BadJSONValue`, a `JSONDecodeError` too):
a key given twice in one object (Python keeps the last, silently), and a lone surrogate
(`"\\udfff"`), which parses but can be neither encoded as UTF-8 nor sent on.
"""

from __future__ import annotations

import json
from typing import Any

Path = tuple[str | int, ...]


class _NotJSONNumber(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> Any:
    raise _NotJSONNumber(constant)


class BadJSONValue(json.JSONDecodeError):
    """Well-formed JSON we refuse: `kind` (`duplicate_key`, `lone_surrogate`) at `path`."""

    def __init__(self, kind: str, message: str, path: Path) -> None:
        super().__init__(message, "", 0)
        self.kind = kind
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


_SURROGATE = "a lone UTF-16 surrogate (such as \\udfff) is not text"


class _Duplicated(dict[str, Any]):
    """An object that had a key more than once (the walk in `_refuse_bad_values` reports it)."""

    duplicate: str


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _Duplicated(obj)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.duplicate = key
            break
        seen.add(key)
    return marked


def printable(text: str) -> str:
    """Text safe to send back in an answer: surrogates as `\\udfff` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _refuse_bad_values(value: Any) -> None:
    """Walk the parsed value (without recursion: nesting is as deep as the parser allows)."""
    stack: list[tuple[Path, Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                raise BadJSONValue("lone_surrogate", _SURROGATE, path)
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in enumerate(item))
        elif isinstance(item, dict):
            if isinstance(item, _Duplicated):
                key = printable(item.duplicate)
                message = f"the key {key!r} is given more than once; give it once"
                raise BadJSONValue("duplicate_key", message, (*path, key))
            for k, v in item.items():
                if _has_surrogate(k):
                    raise BadJSONValue("lone_surrogate", _SURROGATE, (*path, printable(k)))
                stack.append(((*path, k), v))


def loads(data: bytes | str) -> Any:
    """`json.loads` that accepts only JSON; anything else is a `json.JSONDecodeError`."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise json.JSONDecodeError("not UTF-8 text", repr(data[:64]), e.start) from None
    else:
        text = data
    try:
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_object)
    except _NotJSONNumber as e:
        message = f"{e.constant} is not a JSON number"
        raise json.JSONDecodeError(message, text, max(text.find(e.constant), 0)) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as e:
        # Python refuses to convert integers of more than 4,300 digits (CVE-2020-10735).
        raise json.JSONDecodeError(f"number too long: {e}", text, 0) from None
    _refuse_bad_values(value)
    return value
