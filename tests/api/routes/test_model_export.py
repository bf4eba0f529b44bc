"""GET /models/{id}/export?format=onnx: the file, run by onnxruntime, answers what POST /classify
answers for the same 100 real test digits (as /classify sees them after its preprocessing)."""

import numpy as np
import onnxruntime

from adgm_core.images import decode_upload, to_model_input


def test_the_onnx_file_answers_what_classify_answers(model_client, trained_state, test_digits, encode):
    response = model_client.get(f"/models/{trained_state.model_id}/export", params={"format": "onnx"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == f'attachment; filename="adgm-{trained_state.model_id}.onnx"'
    session = onnxruntime.InferenceSession(response.content, providers=["CPUExecutionProvider"])

    pngs = [encode(digit) for digit in test_digits[0][:100]]
    served = []
    for start in (0, 50):  # /classify takes at most 64 files a request
        files = [("files", (f"{i}.png", png)) for i, png in enumerate(pngs[start:start + 50])]
        served += [result["probabilities"] for result in model_client.post("/classify", files=files).json()["results"]]
    images = np.stack([to_model_input(decode_upload(png), (28, 28)) for png in pngs])
    onnx = session.run(["probabilities"], {"image": images})[0]
    np.testing.assert_allclose(onnx, np.array(served), atol=1e-4, rtol=0)
    print(f"ONNX max |onnxruntime - /classify| over 100 digits: {np.abs(onnx - np.array(served)).max():.2e}")
    assert model_client.get(f"/models/{trained_state.model_id}/export").content == response.content  # made once


def test_unknown_model_and_format(model_client, trained_state):
    assert model_client.get(f"/models/{'0' * 32}/export").status_code == 404
    answer = model_client.get(f"/models/{trained_state.model_id}/export", params={"format": "tflite"})
    assert answer.status_code == 422 and "onnx" in answer.text
