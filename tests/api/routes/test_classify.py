"""POST /classify and POST /analogies with real digit images and with every kind of bad upload."""

import io

import numpy as np
import pytest
from PIL import Image


def as_files(*named_contents, field="files"):
    return [(field, (name, content, "application/octet-stream")) for name, content in named_contents]


def test_before_any_model(client, encode):
    response = client.post("/classify", files=as_files(("a.png", encode(np.zeros((28, 28), np.uint8)))))
    assert response.status_code == 503
    assert "POST /train" in response.json()["detail"]


def test_real_digits_get_probabilities_and_novelty(model_client, trained_state, test_digits, encode):
    images, _labels = test_digits
    files = as_files(*((f"digit{index}.png", encode(255 - images[index])) for index in range(5)))
    response = model_client.post("/classify", files=files, params={"novelty": "true"})
    assert response.status_code == 200
    body = response.json()
    assert body["model_id"] == trained_state.model_id
    assert [result["filename"] for result in body["results"]] == [f"digit{index}.png" for index in range(5)]
    for result in body["results"]:
        probabilities = np.array(result["probabilities"])
        assert probabilities.shape == (10,)
        assert np.all(probabilities >= 0) and probabilities.sum() == pytest.approx(1.0, abs=1e-4)
        assert result["label"] == int(np.argmax(probabilities))
        assert 0.0 <= result["novelty"] <= 1.0


def test_novelty_only_when_asked_and_the_predictors_numbers(model_client, trained_state, test_digits, encode):
    """The API serves NumpyPredictor's numbers exactly (no torch in the API process), and they are
    Predictor's, the torch computation, within 1e-5."""
    from adgm_core.images import decode_upload, to_model_input
    from adgm_core.numpy_predictor import NumpyPredictor
    from adgm_core.predictor import Predictor

    images, _labels = test_digits
    pngs = [encode(images[index]) for index in range(4)]
    files = as_files(*(("d.png", png) for png in pngs))
    plain = model_client.post("/classify", files=files).json()["results"]
    asked = model_client.post("/classify", files=files, params={"novelty": "true"}).json()["results"]
    assert [result["novelty"] for result in plain] == [None] * 4  # the key is kept, null
    assert [result["probabilities"] for result in plain] == [result["probabilities"] for result in asked]
    directory = trained_state.directory / "artifacts" / "models" / trained_state.model_id
    inputs = np.stack([to_model_input(decode_upload(png)) for png in pngs])
    probabilities, novelty = NumpyPredictor.from_directory(directory).classify(inputs)
    assert np.array_equal(np.array([result["probabilities"] for result in plain], np.float32), probabilities)
    assert [result["novelty"] for result in asked] == [float(score) for score in novelty]
    torch_probabilities, torch_novelty = Predictor.from_directory(directory).classify(inputs)
    np.testing.assert_allclose(probabilities, torch_probabilities, rtol=0, atol=1e-5)
    np.testing.assert_allclose(novelty, torch_novelty, rtol=0, atol=1e-5)
    assert model_client.post("/classify", files=files, params={"novelty": "perhaps"}).status_code == 422


def test_the_same_request_gets_the_same_answer(model_client, test_digits, encode):
    images, _ = test_digits
    files = as_files(*(("d.png", encode(images[index])) for index in range(3)))
    first = model_client.post("/classify", files=files).json()
    assert model_client.post("/classify", files=files).json() == first


def test_jpeg_large_and_colour_images(model_client, test_digits, encode):
    images, _ = test_digits
    big = Image.fromarray(255 - images[0]).resize((900, 700)).convert("RGB")
    files = as_files(("big.jpg", encode(big, "JPEG")), ("colour.png", encode(big.convert("RGBA"))))
    response = model_client.post("/classify", files=files)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


def test_noise_is_more_unusual_than_digits(model_client, test_digits, encode):
    images, _ = test_digits
    digits = model_client.post("/classify", files=as_files(*(("d.png", encode(images[i])) for i in range(20))),
                               params={"novelty": "true"})
    rng = np.random.default_rng(0)
    noise = [encode(rng.integers(0, 256, (28, 28), dtype=np.uint8)) for _ in range(3)]
    unusual = model_client.post("/classify", files=as_files(*(("noise.png", png) for png in noise)),
                                params={"novelty": "true"})
    digit_novelty = np.mean([result["novelty"] for result in digits.json()["results"]])
    assert min(result["novelty"] for result in unusual.json()["results"]) > digit_novelty


def gif_bytes() -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("L", (28, 28), color) for color in (0, 255)]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"", 422, "empty"),
        (b"just some text, renamed .png", 415, "PNG or JPEG"),
        (gif_bytes(), 415, "GIF"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 422, "corrupt"),
    ],
)
def test_bad_uploads_name_the_problem_and_the_file(model_client, content, status, words):
    response = model_client.post("/classify", files=as_files(("upload.png", content)))
    assert response.status_code == status
    detail = response.json()["detail"]
    assert words in detail and detail.startswith("upload.png: ")


def test_truncated_png(model_client, test_digits, encode):
    png = encode(test_digits[0][0])
    response = model_client.post("/classify", files=as_files(("cut.png", png[: len(png) // 2])))
    assert response.status_code == 422
    assert "cut.png" in response.json()["detail"]


def test_one_bad_file_fails_the_whole_request(model_client, test_digits, encode):
    files = as_files(("good.png", encode(test_digits[0][0])), ("bad.png", b"nope"))
    response = model_client.post("/classify", files=files)
    assert response.status_code == 415
    assert "bad.png" in response.json()["detail"]


def test_an_image_with_too_many_pixels(make_settings, start_client, trained_state, encode):
    client = start_client(make_settings(trained_state, max_image_pixels=100_000))
    response = client.post("/classify", files=as_files(("huge.png", encode(np.zeros((400, 400), np.uint8)))))
    assert response.status_code == 413
    assert "160,000 pixels" in response.json()["detail"]


def test_a_decompression_bomb(model_client):
    # 20,000 × 20,000 black pixels compress to a few hundred kilobytes.
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 2_000_000
    response = model_client.post("/classify", files=as_files(("bomb.png", buffer.getvalue())))
    assert response.status_code == 413
    assert "400,000,000 pixels" in response.json()["detail"]


def test_an_oversized_body(make_settings, start_client, trained_state):
    client = start_client(make_settings(trained_state, max_upload_bytes=10_000))
    response = client.post("/classify", files=as_files(("big.png", b"\x89PNG" + b"\0" * 20_000)))
    assert response.status_code == 413
    assert "10000 bytes" in response.json()["detail"]


def test_no_files_and_too_many_files(make_settings, start_client, trained_state, test_digits, encode):
    client = start_client(make_settings(trained_state, max_classify_files=3))
    response = client.post("/classify", files=[])
    assert response.status_code == 422
    png = encode(test_digits[0][0])
    response = client.post("/classify", files=as_files(*(("d.png", png) for _ in range(4))))
    assert response.status_code in (400, 413, 422)
    assert "3" in response.json()["detail"]
    assert client.post("/classify", files=as_files(*(("d.png", png) for _ in range(3)))).status_code == 200


def test_analogies_render_the_style_under_every_label(model_client, trained_state, test_digits, encode):
    png = encode(255 - test_digits[0][0])
    response = model_client.post("/analogies", files=as_files(("style.png", png), field="file"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-model-id"] == trained_state.model_id
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (2 + 10 * 30, 2 + 30)
    again = model_client.post("/analogies", files=as_files(("style.png", png), field="file"))
    assert again.content == response.content
    tiles = np.asarray(image)[2:30, 2:].reshape(28, 10, 30)[:, :, :28]
    assert len({tiles[:, k].tobytes() for k in range(10)}) == 10  # one different image per label


def test_analogies_refuse_a_non_image(model_client):
    response = model_client.post("/analogies", files=as_files(("notes.txt", b"hello"), field="file"))
    assert response.status_code == 415
    assert "notes.txt" in response.json()["detail"]
    assert model_client.post("/analogies").status_code == 422
