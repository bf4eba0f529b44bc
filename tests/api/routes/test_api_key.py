"""With ADGM_API_KEY set: the admin key and scoped tokens, each refusal with its reason (missing,
invalid, expired, revoked, a scope that does not cover the route) and never the token, revocation
and expiry seen from the next request, and an OpenAPI document that says all this."""

import base64
from datetime import timedelta

import pytest

from app.api.access import ROUTES, declared
from store.db import utcnow
from store.scopes import Scope
from store.tables import ApiToken

KEY = "s3cret-key"
METRICS_TOKEN = "prometheus-token"


@pytest.fixture
def keyed_client(make_settings, start_client, trained_state):
    return start_client(make_settings(trained_state, api_key=KEY, metrics_token=METRICS_TOKEN))


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def detail(answer) -> str:
    body = answer.json()
    return body.get("detail", body.get("error"))


def test_each_refusal_names_its_reason_and_never_the_token(keyed_client, trained_state):
    tokens = keyed_client.app.state.runtime.tokens
    infer = tokens.create(Scope.INFER, "reader")[1]
    expired_record, expired = tokens.create(Scope.ADMIN, "old", timedelta(days=1))
    with tokens.sessions.begin() as session:
        session.get(ApiToken, expired_record.id).expires_at = utcnow() - timedelta(minutes=1)
    revoked = tokens.create(Scope.ADMIN, "gone")[1]
    tokens.revoke("gone")
    export = f"/models/{trained_state.model_id}/export"
    cases = [
        ({}, 401, "Missing API key: this route needs one; send 'Authorization: Bearer <key>'"),
        (bearer("nope"), 401, "Invalid API key: it is neither ADGM_API_KEY nor a token of this server"),
        (bearer(infer + "x"), 401, "Invalid API key"),
        (bearer(KEY + " "), 401, "Invalid API key"),
        ({"Authorization": f"Basic {base64.b64encode(f'u:{KEY}'.encode()).decode()}"}, 401, "Invalid Authorization header"),
        ({"Authorization": KEY}, 401, "Invalid Authorization header"),
        ({"Authorization": f"Token {KEY}"}, 401, "Invalid Authorization header"),
        (bearer(expired), 401, "Expired API key: token 'old' expired at 20"),
        (bearer(revoked), 401, "Revoked API key: token 'gone' was revoked at 20"),
        (bearer(infer), 403, "Scope infer cannot GET /models/{model_id}/export: that needs scope admin or more "
                             "(token 'reader' has infer)."),
        (bearer(METRICS_TOKEN), 403, "ADGM_METRICS_TOKEN cannot GET /models/{model_id}/export: it opens GET /metrics only."),
    ]
    for headers, status, words in cases:
        answer = keyed_client.get(export, headers=headers)
        assert answer.status_code == status and detail(answer).startswith(words), (headers, answer.text)
        if status == 401:
            assert answer.headers["www-authenticate"] == "Bearer"
        sent = headers.get("Authorization", "").split(" ")[-1]
        assert not sent or (sent not in answer.text and sent not in str(answer.headers)), headers
    assert keyed_client.get(export, headers=bearer(KEY)).status_code == 200


def test_scopes_nest_and_the_admin_key_opens_everything(keyed_client, trained_state, encode, test_digits):
    tokens = keyed_client.app.state.runtime.tokens
    infer, label, admin = (tokens.create(scope)[1] for scope in Scope)
    digit = {"files": ("d.png", encode(test_digits[0][0]))}
    for token in (infer, label, admin, KEY):
        assert keyed_client.post("/classify", files=digit, headers=bearer(token)).status_code == 200
        assert keyed_client.get("/sample", params={"label": 3}, headers=bearer(token)).content.startswith(b"\x89PNG")
    assert keyed_client.get("/jobs", headers=bearer(infer)).status_code == 403
    for token in (label, admin, KEY):
        assert keyed_client.get(f"/jobs/{trained_state.job_id}", headers=bearer(token)).json()["status"] == "succeeded"
        assert keyed_client.get("/datasets/digits5k/images/0", headers=bearer(token)).headers["cache-control"].startswith("private")
    for token in (infer, label):
        assert keyed_client.delete(f"/models/{trained_state.model_id}", headers=bearer(token)).status_code == 403
    assert keyed_client.get("/models", headers=bearer(infer)).json()["default"] == trained_state.model_id  # nothing went
    assert keyed_client.delete(f"/models/{trained_state.model_id}", headers=bearer(admin)).status_code == 204


def test_revocation_and_expiry_hold_from_the_next_request(keyed_client):
    tokens = keyed_client.app.state.runtime.tokens
    record, token = tokens.create(Scope.LABEL, "temp", timedelta(hours=1))
    assert keyed_client.get("/jobs", headers=bearer(token)).status_code == 200
    with tokens.sessions.begin() as session:
        session.get(ApiToken, record.id).expires_at = utcnow() - timedelta(seconds=1)
    assert detail(keyed_client.get("/jobs", headers=bearer(token))).startswith("Expired API key: token 'temp'")
    other = tokens.create(Scope.LABEL, "other")[1]
    assert keyed_client.get("/jobs", headers=bearer(other)).status_code == 200
    tokens.revoke("other")
    answer = keyed_client.get("/jobs", headers=bearer(other))
    assert answer.status_code == 401 and detail(answer).startswith("Revoked API key: token 'other'")


def test_the_metrics_token_opens_metrics_only(keyed_client):
    assert keyed_client.get("/metrics").status_code == 401
    for token in (METRICS_TOKEN, KEY):
        assert "adgm_jobs" in keyed_client.get("/metrics", headers=bearer(token)).text
    label = keyed_client.app.state.runtime.tokens.create(Scope.LABEL)[1]
    assert keyed_client.get("/metrics", headers=bearer(label)).status_code == 403
    assert keyed_client.get("/jobs", headers=bearer(METRICS_TOKEN)).status_code == 403


def test_a_refused_upload_is_not_read(keyed_client):
    """Authentication comes before the body is read: malformed JSON from a token without the scope
    gets 403, not the 422 that parsing it would give."""
    answer = keyed_client.post("/datasets", files={"file": ("big.npz", b"\0" * 5_000_000)})
    assert answer.status_code == 401
    infer = keyed_client.app.state.runtime.tokens.create(Scope.INFER)[1]
    answer = keyed_client.post("/train", content=b"{not json", headers=bearer(infer))
    assert answer.status_code == 403 and "Scope infer cannot POST /train" in detail(answer)


def test_the_schema_declares_the_access_of_every_operation(keyed_client):
    schema = keyed_client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["components"]["securitySchemes"]["HTTPBasic"]["scheme"] == "basic"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            access = declared(method.upper(), path)
            responses = operation["responses"]
            if access.public:
                assert "security" not in operation and "401" not in responses, (method, path)
                continue
            expected = [{"HTTPBearer": []}] + ([{"HTTPBasic": []}] if access.basic else [])
            assert operation["security"] == expected, (method, path)
            assert "401" in responses and ("403" in responses) == (access.scope is not Scope.INFER), (method, path)
            assert f"Needs scope `{access.scope.value}`" in operation["description"]
            error = "ProtocolErrorBody" if path.startswith("/v2") else "ErrorPublic"
            assert responses["401"]["content"]["application/json"]["schema"]["$ref"].endswith(error)
    assert len(ROUTES) > len(schema["paths"])  # the table covers the routes outside the schema too


def test_without_a_key_everything_is_open(model_client):
    assert model_client.post("/train", json={"epochs": 1}).status_code == 202
    assert model_client.get("/jobs").status_code == 200
    assert model_client.get("/models", headers=bearer("anything")).status_code == 200
