"""Batch normalisation: enumerated labels see the statistics of the explicit repeat, eval mode is
deterministic and independent of the batch, and running statistics travel with the checkpoint."""

import copy

import numpy as np
import torch

from adgm_core.checkpoint import load_model, save_model
from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import load_offline_digits, semi_supervised_split
from adgm_core.data.sets import SemiSupervisedSplit
from adgm_core.layers import BatchNorm
from adgm_core.model import ADGM
from adgm_core.predictor import Predictor
from adgm_core.trainer import Trainer

CONFIG = ModelConfig(x_shape=(3, 4), n_classes=4, a_dim=2, z_dim=3, hidden=(8, 6), batch_norm=True)


def model(skip: bool = True) -> ADGM:
    torch.manual_seed(0)
    m = ADGM(ModelConfig(**{**CONFIG.to_dict(), "skip": skip}))
    for p in m.parameters():
        p.data.normal_(0, 0.5)
    return m


def running_stats(m: ADGM) -> dict[str, torch.Tensor]:
    return {k: v for k, v in m.state_dict().items() if "running" in k}


def test_every_hidden_layer_is_normalised():
    m = model()
    norms = [module for module in m.modules() if isinstance(module, BatchNorm)]
    assert len(norms) == 5 * 2  # five networks, two hidden layers each
    assert not any(isinstance(module, BatchNorm) for module in ADGM(ModelConfig(hidden=(8, 6))).modules())


def test_enumerating_labels_by_broadcasting_equals_the_explicit_repeat():
    """q(z|a,y,x), p(a|·) and p(x|·) of K labels broadcast to (K, B, ·) against the same networks on the
    batch repeated K times: same outputs (batch statistics over all K·B rows) and same running statistics."""
    broadcast, repeated = model(), model()
    B = 5
    x, a = torch.rand(B, 12), torch.randn(B, 2)
    eps = torch.randn(4, B, 3)
    labels = torch.arange(4).unsqueeze(1)  # (K, 1)
    flat_labels = torch.arange(4).repeat_interleave(B)  # (K·B,), label-major like the broadcast
    x_rep, a_rep = x.repeat(4, 1), a.repeat(4, 1)

    mu, log_var = broadcast.infer_z(x, a, labels)
    z = mu + torch.exp(0.5 * log_var) * eps
    out_b = [mu, broadcast.generate_a(x, labels, z)[0], broadcast.generate_x(labels, z, a.expand(4, -1, -1))]
    mu_r, log_var_r = repeated.infer_z(x_rep, a_rep, flat_labels)
    z_r = mu_r + torch.exp(0.5 * log_var_r) * eps.reshape(4 * B, 3)
    out_r = [mu_r, repeated.generate_a(x_rep, flat_labels, z_r)[0], repeated.generate_x(flat_labels, z_r, a_rep)]

    assert out_b[0].shape == (4, B, 3)
    for b, r in zip(out_b, out_r):
        torch.testing.assert_close(b.reshape(4 * B, -1), r)
    stats_b, stats_r = running_stats(broadcast), running_stats(repeated)
    assert any(not torch.equal(v, model().state_dict()[k]) for k, v in stats_b.items())  # the statistics moved
    for k in stats_b:
        torch.testing.assert_close(stats_b[k], stats_r[k])


def test_train_mode_uses_batch_statistics_eval_mode_does_not():
    m = model()
    x = torch.rand(6, 12)
    alone = m.infer_a(x[:3])[0]
    together = m.infer_a(x)[0][:3]
    assert not torch.allclose(alone, together)  # train mode: the batch matters
    m.eval()
    before = copy.deepcopy(running_stats(m))
    first = m.infer_a(x)[0]
    torch.testing.assert_close(m.infer_a(x)[0], first, rtol=0, atol=0)  # deterministic
    torch.testing.assert_close(m.infer_a(x[:3])[0], first[:3])  # independent of the batch
    torch.testing.assert_close(m.infer_a(x[4:5])[0], first[4:5])
    assert all(torch.equal(before[k], v) for k, v in running_stats(m).items())  # eval does not update them


def test_trained_running_statistics_are_saved_and_served_in_eval_mode(tmp_path):
    train, test = load_offline_digits()
    split = semi_supervised_split(train, labels_per_class=2, seed=0)
    split = SemiSupervisedSplit(split.labelled_images, split.labelled_labels, split.unlabelled_images[:300],
                                split.n_classes, split.name)
    config = ModelConfig(a_dim=4, z_dim=4, hidden=(32,), batch_norm=True)
    result = Trainer(config, TrainConfig(epochs=1, batch_size=50, labelled_batch_size=20), split).fit()
    stats = running_stats(result.model)
    assert stats and not all(torch.equal(v, ADGM(config).state_dict()[k]) for k, v in stats.items())
    save_model(tmp_path / "m", result.model, result.card)
    loaded, card = load_model(tmp_path / "m")
    assert not loaded.training
    for k, v in running_stats(loaded).items():
        torch.testing.assert_close(v, stats[k])
    served, trained = Predictor(loaded, card), Predictor(result.model, result.card)
    images = test.images[:20]
    np.testing.assert_allclose(served.classify(images)[0], trained.classify(images)[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(served.classify(images[:1])[0], served.classify(images)[0][:1], rtol=1e-5, atol=1e-6)


def test_a_card_written_before_batch_norm_still_loads():
    old_card = {"x_shape": [28, 28], "n_classes": 10, "a_dim": 32, "z_dim": 32, "hidden": [256, 128],
                "activation": "relu", "skip": True}
    assert ModelConfig.from_dict(old_card).batch_norm is False
