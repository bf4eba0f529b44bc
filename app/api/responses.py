"""OpenAPI declarations of the error answers, shared by the routes."""

from app.schemas import ErrorPublic, UnprocessablePublic


def error(description: str) -> dict:
    return {"model": ErrorPublic, "description": description}


def unprocessable(description: str) -> dict:
    """422: FastAPI's list of field errors, or one sentence when the fields are valid but the
    request is impossible (e.g. more labels per class than the data set has)."""
    return {422: {"model": UnprocessablePublic, "description": description}}


BODY_ERRORS = {
    400: error("Malformed body (not parseable as JSON or multipart)"),
    413: error("Body larger than the limit"),
}
