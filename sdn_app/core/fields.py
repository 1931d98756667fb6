"""Checking JSON input field by field: every error is a ValueError that starts with the
field's path (``services[1].backends[0].weight: must be ...``), for a start-up message or
an HTTP 400."""

from __future__ import annotations

import ipaddress


def fail(where: str, problem: str):
    raise ValueError("%s: %s" % (where, problem))


def keys(obj, where: str, required: set, optional: set) -> dict:
    if not isinstance(obj, dict):
        fail(where, "must be an object")
    missing, unknown = required - set(obj), set(obj) - required - optional
    if missing:
        fail(where, "missing %s" % ", ".join(sorted(missing)))
    if unknown:
        fail(where, "unknown field %s" % ", ".join(sorted(unknown)))
    return obj


def integer(value, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        fail(where, "must be an integer from %d to %d, got %r" % (low, high, value))
    return value


def boolean(value, where: str) -> bool:
    if not isinstance(value, bool):
        fail(where, "must be true or false, got %r" % (value,))
    return value


def choice(value, where: str, choices) -> str:
    if value not in choices:
        fail(where, "must be one of %s, got %r" % (", ".join(choices), value))
    return value


def ipv4(value, where: str) -> str:
    try:
        address = ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, TypeError, ValueError):
        fail(where, "must be an IPv4 address, got %r" % (value,))
    if address.is_multicast or address.is_unspecified or str(address).endswith(".255"):
        fail(where, "must be a unicast host address, got %r" % (value,))
    return str(address)
