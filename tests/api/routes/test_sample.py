"""GET /sample: a PNG grid of generated digits of one class."""

import io

import pytest
from PIL import Image


def grid_size(n: int, side: int = 28, padding: int = 2) -> tuple[int, int]:
    columns = min(n, 10)
    rows = -(-n // columns)
    return padding + columns * (side + padding), padding + rows * (side + padding)


def test_before_any_model_it_says_how_to_train_one(client):
    response = client.get("/sample", params={"label": 5})
    assert response.status_code == 503
    assert "POST /train" in response.json()["detail"]


@pytest.mark.parametrize("n", [1, 7, 16, 100])
def test_a_png_grid_of_n_samples(model_client, trained_state, n):
    response = model_client.get("/sample", params={"label": 5, "n": n, "seed": 3})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-model-id"] == trained_state.model_id
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.mode == "L"
    assert image.size == grid_size(n)
    assert image.getextrema()[1] > 0  # something was drawn


def test_same_seed_same_bytes_other_seed_or_label_other_bytes(model_client):
    def get(**params):
        return model_client.get("/sample", params={"label": 2, "n": 16, "seed": 0, **params}).content

    first = get()
    assert get() == first
    assert get(seed=1) != first
    assert get(label=7) != first


def test_default_n_is_16(model_client):
    image = Image.open(io.BytesIO(model_client.get("/sample", params={"label": 0}).content))
    assert image.size == grid_size(16)


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "label"), ({"label": ""}, "label"), ({"label": 1, "n": 0}, "n"),
     ({"label": 1, "n": 101}, "n"), ({"label": 1, "seed": -1}, "seed"), ({"label": 1, "seed": 2**31}, "seed"),
     ({"label": 1, "model": "../../etc"}, "model")],
)
def test_invalid_parameters(model_client, params, field):
    response = model_client.get("/sample", params=params)
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])


@pytest.mark.parametrize("label", ["-1", "five", str(10**30)])
def test_a_label_that_is_neither_a_class_name_nor_an_index(model_client, label):
    response = model_client.get("/sample", params={"label": label})
    assert response.status_code == 422
    assert "10 classes (0..9): 0, 1, 2" in response.json()["detail"]


def test_a_class_by_name_is_the_class_by_index(model_client):
    by_name = model_client.get("/sample", params={"label": "7", "seed": 4}).content
    assert by_name == model_client.get("/sample", params={"label": 7, "seed": 4}).content


def test_a_label_the_model_does_not_have(model_client, trained_state):
    response = model_client.get("/sample", params={"label": 10})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "label 10 is out of range" in detail and "10 classes (0..9)" in detail


def test_an_unknown_model(model_client):
    unknown = "f" * 32
    response = model_client.get("/sample", params={"label": 1, "model": unknown})
    assert response.status_code == 404
    assert response.json()["detail"] == f"Model {unknown} does not exist."


@pytest.mark.parametrize("n", [1, 100])
def test_the_grid_holds_the_predictors_samples(model_client, trained_state, n):
    """Served without torch (NumpyPredictor), the pixels are Predictor's (torch's), but where a pixel
    mean lies within float rounding of a half grey level: one level apart, in a few pixels at most."""
    import numpy as np

    from adgm_core.images import png_grid
    from adgm_core.predictor import Predictor

    served = np.asarray(Image.open(io.BytesIO(
        model_client.get("/sample", params={"label": 4, "n": n, "seed": 11}).content)))
    predictor = Predictor.from_directory(trained_state.directory / "artifacts" / "models" / trained_state.model_id)
    expected = np.asarray(Image.open(io.BytesIO(png_grid(predictor.sample([4] * n, seed=11)))))
    assert served.shape == expected.shape
    assert np.abs(served.astype(int) - expected).max() <= 1 and (served != expected).mean() < 1e-3
