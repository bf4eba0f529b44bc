"""Which loaded model answers an inference request (POST /classify, GET /sample, the Open Inference
Protocol): the one named, else the default, the newest.

The job store is asked on every request, by one indexed lookup of one column outside any ORM
session (`crud.served_model_id`), so a model that a worker publishes or any API process deletes is
served, or no longer served, by every API process from its next request on; the full record is read
and the weights loaded only the first time a process serves a model.
"""

from app import crud
from app.inference import LoadedModel
from app.runtime import Runtime
from store.tables import TrainedModel


def served_model(runtime: Runtime, model_id: str | None) -> LoadedModel | None:
    """The model `model_id` names (None: the default), loaded; None when it does not exist."""
    with runtime.engine.connect() as connection:
        served_id = crud.served_model_id(connection, model_id)
    if served_id is None:
        return None
    if (loaded := runtime.models.cached(served_id)) is not None:
        return loaded
    with runtime.sessions() as session:
        record = session.get(TrainedModel, served_id)
    return None if record is None else runtime.models.get(record)  # None: deleted in the meantime
