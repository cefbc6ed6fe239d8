"""Who may reach the server, and what it tells those without the key.

`serve` listens on loopback unless told otherwise. A host other machines can reach needs
an API key (in the variable serve.api_key_env names), or `--no-api-key`, said out loud.
With a key, /predict and /metadata need it in the X-API-Key header. /docs and /redoc
stay open, since a browser cannot send that header when Swagger UI or ReDoc loads the
schema; /openapi.json gives a client without the key the schema less what the training
data told (each number's training range and bound, each category list, the class
labels), and a client with the key the whole schema (what schemathesis fuzzes).
"""

from __future__ import annotations

import copy
import ipaddress
import secrets
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from ..core.errors import UserError

API_KEY_HEADER = "X-API-Key"  # pragma: allowlist secret (a header name)
# Names that are this machine's loopback by convention, whatever a resolver says.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})


def key_matches(api_key: str | None) -> Callable[[str | None], bool]:
    """A check of a header value against `api_key` in constant time; no key: nothing passes."""

    def matches(given: str | None) -> bool:
        return bool(api_key and given and secrets.compare_digest(given, api_key))

    return matches


def is_loopback(host: str) -> bool:
    """Whether `host` listens to this machine only: 127.0.0.0/8, ::1 (IPv4-mapped too) or
    a loopback name. Any other name counts as reachable: it may resolve to a network's."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def exposure_warning(host: str, api_key: str | None, *, no_api_key: bool, key_env: str) -> str:
    """Nothing ("") when serving `host` is safe as asked; the warning to log when
    --no-api-key opens a reachable host. Refused: a reachable host without a key, unless
    --no-api-key says so; --no-api-key while a key is set (which one was meant?)."""
    if api_key and no_api_key:
        raise UserError(
            f"--no-api-key, yet {key_env} is set: unset {key_env} to serve without a key, "
            "or drop --no-api-key to require it"
        )
    if api_key or is_loopback(host):
        return ""
    unspecified = host in ("0.0.0.0", "::", "")
    reach = "every network interface of this machine" if unspecified else "a network"
    if not no_api_key:
        raise UserError(
            f"host {host} (--host or serve.host) listens on {reach} and no API key is set: "
            f"set {key_env} (clients send it in the {API_KEY_HEADER} header), or pass "
            "--no-api-key to serve anyone who can reach it"
        )
    return (
        f"NO API KEY on {host} ({reach}), as --no-api-key asked: anyone who reaches this "
        "port can predict and read /metadata, training ranges and categories included"
    )


def public_schema(full: dict, inputs: dict) -> dict:
    """The OpenAPI schema `full` less what the training data told: the numeric inputs'
    training ranges and bounds, the categorical inputs' category lists, the class labels.
    inputs: the request's roles (numeric and categorical column names)."""
    public = copy.deepcopy(full)
    schemas = public.get("components", {}).get("schemas", {})
    fields = schemas.get("Instance", {}).get("properties", {})
    for column in inputs["numeric"]:
        fields[column] = {**_unbounded(fields[column]), "description": "number"}
    for column in inputs["categorical"]:
        fields[column]["description"] = "a category (the known ones: GET /metadata)"
    labels = schemas.get("Prediction", {}).get("properties", {}).get("predictions", {})
    labels.get("items", {}).pop("enum", None)
    return public


def _unbounded(field: dict) -> dict:
    """A field's schema without its minimum and maximum, wherever they sit (anyOf)."""
    out = {k: v for k, v in field.items() if k not in ("minimum", "maximum")}
    if "anyOf" in out:
        out["anyOf"] = [_unbounded(option) for option in out["anyOf"]]
    return out


def add_docs(app: FastAPI, api_key: str | None, inputs: dict) -> None:
    """GET /openapi.json (whole with the key, or when no key is set; else public_schema),
    /docs (Swagger UI) and /redoc, in place of FastAPI's own (made with `openapi_url=None`),
    which cannot tell a client with the key from one without."""
    matches = key_matches(api_key)
    public: list[dict] = []  # built at the first request, once

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        if not api_key or matches(request.headers.get(API_KEY_HEADER)):
            return JSONResponse(app.openapi())
        if not public:
            public.append(public_schema(app.openapi(), inputs))
        return JSONResponse(public[0])

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")
