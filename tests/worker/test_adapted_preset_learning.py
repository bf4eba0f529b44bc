"""A user's own small data set of another image size, trained with the defaults as a user does
(upload an .npz, POST /train with 5 labels per class and nothing else, the worker trains): the
model beats the supervised baseline its card reports on the same labels (issue 17, item 5)."""

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adgm_core.data import load_mnist
from adgm_core.presets import DataProfile, resolve
from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore
from store.tables import Job, TrainedModel
from worker.training import JobRunner

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # about 1.5 CPU minutes; 10 minutes on a loaded core


def downsampled(images: np.ndarray, side: int) -> np.ndarray:
    pooled = F.adaptive_avg_pool2d(torch.as_tensor(images, dtype=torch.float32)[:, None], side)[:, 0]
    return pooled.round().clamp(0, 255).to(torch.uint8).numpy()


def test_the_default_on_a_14x14_upload_beats_its_supervised_baseline(mnist_dir, make_settings, start_client):
    settings = make_settings()
    client = start_client(settings)
    train, test = load_mnist(mnist_dir)
    buffer = io.BytesIO()
    np.savez(buffer, images=downsampled(train.images[:1000], 14), labels=train.labels[:1000],
             test_images=downsampled(test.images[:300], 14), test_labels=test.labels[:300])
    dataset = client.post("/datasets", files={"file": ("mnist14.npz", buffer.getvalue())}).json()["id"]
    job = client.post("/train", json={"dataset": dataset, "labels_per_class": 5}).json()
    assert job["params"]["epochs"] == 80 and job["params"]["classifier_shift"] == 1  # 800 steps, 1 px of 14
    assert {k: v for k, v in job["params"].items() if k not in ("dataset", "name", "preset")} == \
        resolve("quick", DataProfile((14, 14), 1000), labels_per_class=5)

    engine = make_engine(settings.database_url)
    store = JobStore(make_sessionmaker(engine))
    assert JobRunner(settings, store).run(job["id"]) == "succeeded"
    with store.sessions() as session:
        metrics = session.get(TrainedModel, session.get(Job, job["id"]).model_id).metrics
    engine.dispose()
    accuracy, baseline = 1 - metrics["test_error"], metrics["supervised_baseline"]["test_accuracy"]
    assert metrics["supervised_baseline"]["n_labelled"] == 50 and metrics["epochs"] == 80
    assert accuracy > baseline + 0.03, (accuracy, baseline)
