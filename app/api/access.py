"""Who may call what: the access every route needs when ADGM_API_KEY is set, in one table.

The table serves the enforcement (`app.api.authentication`, before a route reads its body) and
the OpenAPI document (`document`). A request is matched against the table's path templates; a
route the table does not name needs the admin scope, and tests/api/routes/test_access.py fails
until it is named. Public routes hold no one's data; docs/reliability.md says why each is public.
"""

import re
from dataclasses import dataclass

from starlette.routing import compile_path

from store.config import Settings
from store.scopes import Scope


@dataclass(frozen=True)
class Access:
    scope: Scope | None  # the least scope that may call the route; None: public
    basic: bool = False  # also HTTP basic auth with the token as password: Label Studio cannot send a bearer token
    metrics_token: bool = False  # ADGM_METRICS_TOKEN opens it too

    @property
    def public(self) -> bool:
        return self.scope is None


PUBLIC = Access(None)
INFER = Access(Scope.INFER)
LABEL = Access(Scope.LABEL)
ADMIN = Access(Scope.ADMIN)
METRICS = Access(Scope.ADMIN, metrics_token=True)
LABEL_STUDIO_INFER = Access(Scope.INFER, basic=True)
LABEL_STUDIO_LABEL = Access(Scope.LABEL, basic=True)
UNDECLARED = Access(Scope.ADMIN, basic=True)  # a route or method the table does not name: admin, in either form

ROUTES: dict[tuple[str, str], Access] = {
    # public by nature: probes, the page and its code, the API's description, the recipes (constants)
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/v2/health/live"): PUBLIC,
    ("GET", "/v2/health/ready"): PUBLIC,
    ("GET", "/label-studio/health"): PUBLIC,
    ("GET", "/label-studio/"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/static/{path:path}"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/presets"): PUBLIC,
    # operations data, no user data: the admin key, or a token that opens nothing else
    ("GET", "/metrics"): METRICS,
    # infer: ask the models (and see which there are)
    ("GET", "/models"): INFER,
    ("GET", "/models/{model_id}"): INFER,
    ("GET", "/sample"): INFER,
    ("POST", "/classify"): INFER,
    ("POST", "/analogies"): INFER,
    ("GET", "/v2"): INFER,
    ("GET", "/v2/models/{name}"): INFER,
    ("GET", "/v2/models/{name}/ready"): INFER,
    ("POST", "/v2/models/{name}/infer"): INFER,
    ("POST", "/label-studio/setup"): LABEL_STUDIO_INFER,  # records the project's classes, which predictions need
    ("POST", "/label-studio/predict"): LABEL_STUDIO_INFER,
    # label: the data, its labels, training
    ("GET", "/datasets"): LABEL,
    ("POST", "/datasets"): LABEL,
    ("GET", "/uploads/{upload_id}"): LABEL,
    ("GET", "/datasets/{dataset_id}"): LABEL,
    ("GET", "/datasets/{dataset_id}/images/{index}"): LABEL,
    ("GET", "/datasets/{dataset_id}/labels"): LABEL,
    ("POST", "/datasets/{dataset_id}/labels"): LABEL,
    ("GET", "/datasets/{dataset_id}/suggestions"): LABEL,
    ("POST", "/train"): LABEL,
    ("GET", "/jobs"): LABEL,
    ("GET", "/jobs/{job_id}"): LABEL,
    ("POST", "/jobs/{job_id}/cancel"): LABEL,
    ("GET", "/jobs/{job_id}/events"): LABEL,
    ("POST", "/label-studio/webhook"): LABEL_STUDIO_LABEL,
    # admin: the trained weights leave, or a model goes
    ("GET", "/models/{model_id}/export"): ADMIN,
    ("DELETE", "/models/{model_id}"): ADMIN,
}

_PATTERNS: dict[str, list[tuple[re.Pattern, str, Access]]] = {}
for (_method, _template), _access in ROUTES.items():
    _PATTERNS.setdefault(_method, []).append((compile_path(_template)[0], _template, _access))


def request_method(method: str) -> str:
    """HEAD is answered by the GET route."""
    return "GET" if method == "HEAD" else method


def declared(method: str, template: str) -> Access:
    """The access the table gives a route; admin when it does not name the route."""
    return ROUTES.get((request_method(method), template), UNDECLARED)


def required(method: str, path: str) -> tuple[str | None, Access]:
    """The template of the route a request goes to, and the access it needs. A path matching no
    template (an unknown route, or a method the path does not have) needs admin, so the router's
    404 and 405 are answered to admins only; a path matching several needs the strictest."""
    matches = [(template, access) for pattern, template, access in _PATTERNS.get(request_method(method), [])
               if pattern.match(path)]
    if not matches:
        return None, UNDECLARED
    return max(matches, key=lambda match: _strictness(match[1]))


def _strictness(access: Access) -> int:
    return -1 if access.public else list(Scope).index(access.scope)


def enforced(access: Access, settings: Settings) -> bool:
    """Without ADGM_API_KEY nothing is checked, except Label Studio's routes when
    ADGM_LABEL_STUDIO_PASSWORD is set."""
    if access.public:
        return False
    if settings.api_key is not None:
        return True
    return access.basic and settings.label_studio_password is not None


def document(schema: dict, settings: Settings) -> None:
    """Writes into the OpenAPI document what the table enforces: each operation's security
    requirement, its 401 and (for tokens of too small a scope) 403, and the scope it needs."""
    schemes = {}
    for path, operations in schema["paths"].items():
        error = "ProtocolErrorBody" if path == "/v2" or path.startswith("/v2/") else "ErrorPublic"
        for method, operation in operations.items():
            access = declared(method.upper(), path)
            operation.pop("security", None)
            if not enforced(access, settings):
                continue
            requirements = []
            if settings.api_key is not None:
                requirements.append({"HTTPBearer": []})
                schemes["HTTPBearer"] = BEARER
            if access.basic:
                requirements.append({"HTTPBasic": []})
                schemes["HTTPBasic"] = BASIC
            operation["security"] = requirements
            body = {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{error}"}}}}
            operation["responses"]["401"] = {"description": "Missing, invalid, expired or revoked API key", **body}
            if access.scope is not Scope.INFER:
                operation["responses"]["403"] = {"description": f"A token whose scope is not {access.scope.value}", **body}
            needs = f"Needs scope `{access.scope.value}`" + (" (or ADGM_METRICS_TOKEN)" if access.metrics_token else "")
            operation["description"] = f"{operation.get('description', '')}\n\n{needs}.".lstrip()
    if schemes:
        schema.setdefault("components", {})["securitySchemes"] = schemes


BEARER = {"type": "http", "scheme": "bearer",
          "description": "ADGM_API_KEY (admin), or a token made by `adgm token create --scope infer|label|admin`."}
BASIC = {"type": "http", "scheme": "basic",
         "description": "Label Studio's routes: the password is a token (or ADGM_API_KEY, or ADGM_LABEL_STUDIO_PASSWORD)."}
