"""Requests for fuzzing the REST API, drawn (hypothesis) from its own OpenAPI description
(sdn_app/ryuapp/openapi.py): every described operation with path parameters, queries
and bodies that follow the schema or break it, and requests for what is not described
at all (unknown paths, other methods, junk bodies).  Used in-process by
tests/test_rest.py and over HTTP against a running controller by the e2e tests."""

from __future__ import annotations

import json
import urllib.parse

from hypothesis import strategies as st

from sdn_app.ryuapp.openapi import document

DOC = document()
OPERATIONS = sorted((path, method) for path, ops in DOC["paths"].items() for method in ops)
PAGE_PATHS = {"", "/ui"}  # /, /ui and /ui/ (less the last /): the topology page, ryuapp/webpage.py
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=24)
IPV4 = st.builds("{}.{}.{}.{}".format, *[st.integers(0, 255)] * 4)


def _resolve(schema: dict) -> dict:
    ref = schema.get("$ref")
    if ref:
        return DOC["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def from_schema(schema: dict, depth: int = 0) -> st.SearchStrategy:
    """Values the schema admits, mostly; with a fair chance of any JSON at all."""
    schema = _resolve(schema)
    if depth > 3:
        return JSON
    if "enum" in schema:
        valid = st.sampled_from(schema["enum"])
    elif schema.get("type") == "object":
        props = schema.get("properties", {})
        required = schema.get("required", [])
        valid = st.fixed_dictionaries(
            {name: from_schema(props[name], depth + 1) for name in required},
            optional={name: from_schema(sub, depth + 1) for name, sub in props.items()
                      if name not in required})
    elif schema.get("type") == "array":
        valid = st.lists(from_schema(schema.get("items", {}), depth + 1), max_size=3)
    elif schema.get("type") == "integer":
        valid = st.integers(schema.get("minimum", -2**40), schema.get("maximum", 2**40))
    elif schema.get("type") == "number":
        valid = st.floats(-1e6, 1e6, allow_nan=False)
    elif schema.get("type") == "boolean":
        valid = st.booleans()
    elif schema.get("format") == "ipv4":
        valid = IPV4
    elif "pattern" in schema:
        valid = st.from_regex(schema["pattern"], fullmatch=True)
    elif schema.get("type") == "string":
        valid = TEXT
    else:
        valid = JSON
    return st.one_of(valid, valid, valid, JSON)


def path_values(known: dict) -> dict:
    """A strategy per path parameter name: one of the ``known`` values (so requests
    reach existing things) or something made up."""
    made_up = st.one_of(TEXT.filter(lambda t: t not in (".", "..")), st.integers(
        0, 2**66).map(str), st.integers(0, 2**64).map("{:x}".format))
    return {name: st.one_of(st.sampled_from(values), made_up) if values else made_up
            for name, values in known.items()}


@st.composite
def requests(draw, known: dict):
    """(method, path with query, body bytes or None, headers)."""
    if draw(st.integers(0, 9)) == 0:  # not described: junk path, any method
        segments = draw(st.lists(TEXT, min_size=1, max_size=4))
        path = "/" + "/".join(urllib.parse.quote(s, safe="") for s in segments)
        if path.rstrip("/") in PAGE_PATHS:  # the topology page is HTML, not the API
            path += "x"
        body = draw(st.none() | st.binary(max_size=64))
        return draw(st.sampled_from(METHODS)), path, body, {}
    path, method = draw(st.sampled_from(OPERATIONS))
    op = DOC["paths"][path][method]
    values = path_values(known)
    for param in op["parameters"]:
        if param["in"] == "path":
            value = draw(values.get(param["name"], TEXT))
            path = path.replace("{%s}" % param["name"], urllib.parse.quote(str(value),
                                                                           safe=""))
    query = {}
    for param in op["parameters"]:
        if param["in"] == "query" and (param["required"] or draw(st.booleans())):
            query[param["name"]] = str(draw(from_schema(param["schema"])))
    if draw(st.integers(0, 5)) == 0:
        query[draw(TEXT.filter(bool))] = draw(TEXT)
    if query:
        path += "?" + urllib.parse.urlencode(query)
    if draw(st.integers(0, 9)) == 0:  # another method on a described path
        method = draw(st.sampled_from(METHODS)).lower()
    body = None
    if "requestBody" in op:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        kind = draw(st.integers(0, 9))
        if kind == 0:
            body = draw(st.binary(max_size=64))
        else:
            body = json.dumps(draw(from_schema(schema))).encode()
    return method.upper(), path, body, {"Content-Type": "application/json"}
