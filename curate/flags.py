"""Argument types and checks shared by every options class (the lowest layer: it imports only
curate.errors)."""
from __future__ import annotations

import argparse

from curate.errors import UsageError


def str2bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def bool_flag(parser, name: str, default, help: str) -> None:
    parser.add_argument(name, type=str2bool, nargs="?", const=True, default=default, help=help)


def optional_float(value: str) -> float | None:
    if value.lower() in ("none", ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or none, got {value!r}") from None


def flag_defaults(*option_classes) -> argparse.Namespace:
    """What the flags of these options classes give when none is passed: a config dataclass takes
    its field defaults from here, so a default is written once, on its flag."""
    parser = argparse.ArgumentParser(add_help=False)
    for options in option_classes:
        options._add_argparse_args(parser)
    return parser.parse_args([])


def one_of(flag: str, value, choices) -> None:
    """A flag's value is one of its choices, or the run stops with one line."""
    if value not in choices:
        raise UsageError(f"{flag}: {value!r} is not one of {', '.join(choices)}")


def in_range(flag: str, value, low, high) -> None:
    if not low <= value <= high:
        raise UsageError(f"{flag}: must be {low}..{high}, got {value}")
