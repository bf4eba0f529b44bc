"""Self-consistency: the model's own q(y|x) on its samples of each label, as written into the card."""

import numpy as np
import torch

from adgm_core.config import ModelConfig
from adgm_core.evaluation import self_consistency
from adgm_core.model import ADGM


def test_a_decoder_that_ignores_the_label_scores_chance():
    """Samples of every label come from one distribution, so the shares over the K labels sum to about
    one whatever the classifier does: the mean is about 1/K."""
    torch.manual_seed(0)
    m = ADGM(ModelConfig(a_dim=4, z_dim=4, hidden=(32,), skip=False)).eval()
    with torch.no_grad():
        m.p_x_net.label.weight.zero_()
        m.q_y_logits.weight.normal_(0, 0.05)  # a classifier that spreads its answers over several labels
    result = self_consistency(m, samples=4, per_label=200)
    assert len(result["per_label"]) == 10 and result["mean"] == np.mean(result["per_label"])
    assert abs(sum(result["per_label"]) - 1) < 0.25


def test_a_classifier_that_reads_the_decoders_label_scores_one():
    """A decoder that writes the label into fixed pixels and a classifier that reads them back."""
    torch.manual_seed(0)
    K, D = 3, 16
    m = ADGM(ModelConfig(x_shape=(4, 4), n_classes=K, a_dim=2, z_dim=2, hidden=(K,), skip=False)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.p_x_net.label.weight.copy_(torch.eye(K))  # hidden unit k is on for label k (ReLU)
        m.p_x_logits.weight[:K].copy_(20 * torch.eye(K))  # pixel k lit for label k
        m.p_x_logits.bias.fill_(-10.0)
        m.q_y_net.first["x"].weight[:, :K].copy_(torch.eye(K))  # hidden unit k reads pixel k
        m.q_y_logits.weight.copy_(10 * torch.eye(K))
    result = self_consistency(m, samples=2, per_label=20)
    assert result["per_label"] == [1.0, 1.0, 1.0]
    with torch.no_grad():
        m.q_y_logits.weight.copy_(10 * torch.eye(K).roll(1, 0))  # a classifier that answers the next label
    assert self_consistency(m, samples=2, per_label=20)["mean"] == 0.0
