"""The classifier q(y | x) as an ONNX graph, for serving without this package (onnxruntime, Triton,
KServe).

The graph computes what `Predictor.classify` computes:

    q(y | x) ≈ (1/S) Σ_s q(y | a_s, x),   a_s = μ_φ(x) + σ_φ(x) ⊙ ε_s,

with the predictor's S fixed draws ε_s (constants of the graph, so the same image gives the same
answer here as from the service), on the model in eval mode (running batch-norm statistics, the
weights the predictor holds). Input `image`: uint8 [N, H, W], bright ink on black; output
`probabilities`: float32 [N, K].
"""

from __future__ import annotations

import copy
import io
import warnings

import torch
from torch import Tensor, nn

from adgm_core.layers import reparameterize
from adgm_core.model import ADGM
from adgm_core.predictor import Predictor

INPUT, OUTPUT = "image", "probabilities"


class Classifier(nn.Module):
    """uint8 images (N, H, W) → q(y | x) (N, K), averaged over the fixed draws `eps` (S, 1, A)."""

    def __init__(self, model: ADGM, eps: Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("eps", eps.detach().clone())

    def forward(self, image: Tensor) -> Tensor:
        x = image.reshape(image.shape[0], -1).float() / 255.0
        mu_a, log_var_a = self.model.infer_a(x)
        a = reparameterize(mu_a, log_var_a, self.eps)  # (S, N, A)
        logits = self.model.classify(x.expand(len(self.eps), -1, -1), a)
        return torch.softmax(logits, dim=-1).mean(0)


def classifier_of(predictor: Predictor) -> Classifier:
    """A copy of the predictor's model on the CPU, in eval mode, with its draws of ε."""
    model = copy.deepcopy(predictor.model).cpu().eval()
    return Classifier(model, predictor._eps_y.cpu()).eval()


def to_onnx(classifier: Classifier) -> bytes:
    """The serialised ONNX model of `classifier`, any batch size."""
    height, width = classifier.model.config.x_shape
    example = torch.zeros((2, height, width), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(classifier, (example,), input_names=[INPUT], output_names=[OUTPUT],
                                    dynamic_shapes={"image": {0: batch}}, dynamo=True, verbose=False)
    buffer = io.BytesIO()
    program.save(buffer, external_data=False)
    return buffer.getvalue()


def export_onnx(predictor: Predictor) -> bytes:
    """The predictor's classifier as a serialised ONNX model."""
    return to_onnx(classifier_of(predictor))
