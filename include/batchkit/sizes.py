"""Human-readable byte sizes ("200MB", "1.5 GiB") to integers."""

import re

from .errors import InputError

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Parse ``"200MB"`` (SI, as OpenAI documents its 200 MB limit) or ``"1GiB"`` into bytes.

    :raises InputError: the text is not a size.
    """
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        raise InputError(f"invalid size {text!r}: use a number with an optional unit such as 200MB, 512KiB or 1GB")
    return int(float(match.group(1)) * _UNITS[unit])
