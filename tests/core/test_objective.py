"""The batched bounds against a slow, independent per-example computation with fixed noise.

The reference concatenates each network's inputs (one-hot labels included) into a single vector,
multiplies by the concatenated first-layer weights, uses torch.distributions for every density
and loops explicitly over examples, labels and Monte Carlo samples.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Categorical, Normal

from adgm_core.config import ModelConfig
from adgm_core.model import ADGM
from adgm_core.objective import Noise, labelled_bound, semi_supervised_loss, unlabelled_bound


@pytest.fixture(autouse=True)
def double_precision():
    """The comparison is about the algebra, not float32 rounding."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def mlp(net, parts: dict, y: int | None, n_classes: int):
    """Reference forward pass of a MultiInputMLP on one example, via one concatenated linear map."""
    weights = [net.first[name].weight for name in net.first] + ([net.label.weight.T] if net.label is not None else [])
    inputs = [parts[name] for name in net.first] + ([F.one_hot(torch.tensor(y), n_classes).double()] if net.label is not None else [])
    h = torch.cat(weights, dim=1) @ torch.cat(inputs) + net.bias
    return net.rest(h)


def gaussian(head, h):
    mu, log_var = head(h)
    return Normal(mu, torch.exp(0.5 * log_var))


def reference_bound_given_a(m: ADGM, x, y: int, a, q_a, eps_z):
    """-L(x, y) for one example, one label and a given sample a ~ q(a|x)."""
    c = m.config
    q_z = gaussian(m.q_z, mlp(m.q_z_net, {"x": x, "a": a}, y, c.n_classes))
    z = q_z.mean + q_z.stddev * eps_z
    p_a = gaussian(m.p_a, mlp(m.p_a_net, {"x": x, "z": z}, y, c.n_classes))
    p_x_logits = m.p_x_logits(mlp(m.p_x_net, {"z": z, "a": a}, y, c.n_classes))
    p_z = Normal(torch.zeros(c.z_dim), torch.ones(c.z_dim))
    return (
        Bernoulli(logits=p_x_logits).log_prob(x).sum()
        + math.log(1 / c.n_classes)
        + p_z.log_prob(z).sum()
        + p_a.log_prob(a).sum()
        - q_a.log_prob(a).sum()
        - q_z.log_prob(z).sum()
    )


def sample_a(m: ADGM, x, eps_a):
    q_a = gaussian(m.q_a, mlp(m.q_a_net, {"x": x}, None, m.config.n_classes))
    return q_a.mean + q_a.stddev * eps_a, q_a


def reference_labelled(m: ADGM, x, y: int, eps_a, eps_z):
    a, q_a = sample_a(m, x, eps_a)
    return reference_bound_given_a(m, x, y, a, q_a, eps_z)


def reference_unlabelled(m: ADGM, x, eps_a, eps_z_per_label):
    a, q_a = sample_a(m, x, eps_a)
    q_y = Categorical(logits=m.q_y_logits(mlp(m.q_y_net, {"x": x, "a": a}, None, m.config.n_classes)))
    total = q_y.entropy()
    for y in range(m.config.n_classes):
        total = total + q_y.probs[y] * reference_bound_given_a(m, x, y, a, q_a, eps_z_per_label[y])
    return total, q_y.logits.log_softmax(-1)


@pytest.fixture(params=[False, True], ids=["ADGM", "SDGM"])
def model(request):
    torch.manual_seed(0)
    config = ModelConfig(x_shape=(3, 4), n_classes=3, a_dim=2, z_dim=3, hidden=(5, 4), activation="softplus",
                         skip=request.param)
    m = ADGM(config).double()
    for p in m.parameters():  # larger weights than the init so that every term matters
        p.data.normal_(0, 0.7)
    return m


def batch(n, d=12):
    torch.manual_seed(1)
    return (torch.rand(n, d) < 0.5).double(), torch.randint(0, 3, (n,))


def test_labelled_bound_matches_reference(model):
    x, y = batch(6)
    eps_a, eps_z = torch.randn(6, 2), torch.randn(6, 3)
    bound = labelled_bound(model, x, y, eps_a, eps_z)
    expected = torch.stack([reference_labelled(model, x[i], int(y[i]), eps_a[i], eps_z[i]) for i in range(6)])
    torch.testing.assert_close(bound.elbo, expected, atol=1e-5, rtol=1e-7)


def test_unlabelled_bound_enumerates_labels_with_one_shared_a(model):
    x, _ = batch(5)
    eps_a, eps_z = torch.randn(5, 2), torch.randn(3, 5, 3)
    bound = unlabelled_bound(model, x, eps_a, eps_z)
    for i in range(5):
        expected, log_q_y = reference_unlabelled(model, x[i], eps_a[i], eps_z[:, i])
        torch.testing.assert_close(bound.elbo[i], expected, atol=1e-5, rtol=1e-7)
        torch.testing.assert_close(bound.log_q_y[i], log_q_y, atol=1e-5, rtol=1e-7)


def test_loss_folds_monte_carlo_samples_into_the_batch(model):
    """J with S copies equals the average over S separate reference evaluations, classifier term included."""
    x_l, y_l = batch(4)
    x_u, _ = batch(3)
    S, alpha = 3, 2.5
    g = torch.Generator().manual_seed(7)
    noise = Noise(torch.randn(S * 4, 2, generator=g), torch.randn(S * 4, 3, generator=g),
                  torch.randn(S * 3, 2, generator=g), torch.randn(3, S * 3, 3, generator=g))
    out = semi_supervised_loss(model, x_l.repeat(S, 1), y_l.repeat(S), x_u.repeat(S, 1), noise, alpha)

    labelled, classification, unlabelled = [], [], []
    for s in range(S):
        for i in range(4):
            row = s * 4 + i
            labelled.append(reference_labelled(model, x_l[i], int(y_l[i]), noise.a_labelled[row], noise.z_labelled[row]))
            a, _ = sample_a(model, x_l[i], noise.a_labelled[row])  # the same a as the bound: one shared sample
            logits = model.q_y_logits(mlp(model.q_y_net, {"x": x_l[i], "a": a}, None, 3))
            classification.append(-Categorical(logits=logits).log_prob(y_l[i]))
        for i in range(3):
            row = s * 3 + i
            unlabelled.append(reference_unlabelled(model, x_u[i], noise.a_unlabelled[row], noise.z_unlabelled[:, row])[0])
    expected = -torch.stack(labelled).mean() - torch.stack(unlabelled).mean() + alpha * torch.stack(classification).mean()
    torch.testing.assert_close(out.loss, expected, atol=1e-5, rtol=1e-7)


def test_warmup_scales_only_the_latent_terms(model):
    """With beta = 0 the labelled bound is log p(x|y,z) + log p(y) alone."""
    x, y = batch(4)
    eps_a, eps_z = torch.randn(4, 2), torch.randn(4, 3)
    full = labelled_bound(model, x, y, eps_a, eps_z, beta=1.0).elbo
    none = labelled_bound(model, x, y, eps_a, eps_z, beta=0.0).elbo
    half = labelled_bound(model, x, y, eps_a, eps_z, beta=0.5).elbo
    torch.testing.assert_close(half, (full + none) / 2)
    assert not torch.allclose(full, none)


def test_posterior_variance_can_fall_below_one():
    """The log-variance is unconstrained: no softplus floor of variance 1 (the known reimplementation bug)."""
    m = ADGM(ModelConfig(x_shape=(2, 2), n_classes=2, a_dim=2, z_dim=2, hidden=(4,)))
    with torch.no_grad():
        m.q_a.log_var.bias.fill_(-6.0)
        m.q_a.log_var.weight.zero_()
    _, log_var = m.infer_a(torch.zeros(1, 4))
    assert torch.exp(log_var).max() < 0.01


def test_classification_term_takes_the_softmax_averaged_over_mc_samples(model):
    """With samples = S, the labelled cross-entropy is -log (1/S) Σ_s q(y | a_s, x), per example, against a
    per-example loop over the S samples of a; the bounds are unchanged."""
    for p in model.parameters():  # the fixture's large weights give losses near 1e12: too coarse for a difference
        p.data.mul_(0.3)
    x_l, y_l = batch(4)
    x_u, _ = batch(3)
    S, alpha = 3, 2.5
    g = torch.Generator().manual_seed(11)
    noise = Noise(torch.randn(S * 4, 2, generator=g), torch.randn(S * 4, 3, generator=g),
                  torch.randn(S * 3, 2, generator=g), torch.randn(3, S * 3, 3, generator=g))
    args = (model, x_l.repeat(S, 1), y_l.repeat(S), x_u.repeat(S, 1), noise, alpha)
    per_sample, averaged = semi_supervised_loss(*args), semi_supervised_loss(*args, samples=S)

    per_sample_ce, averaged_ce = [], []
    for i in range(4):
        probabilities = []
        for s in range(S):
            a, _ = sample_a(model, x_l[i], noise.a_labelled[s * 4 + i])
            logits = model.q_y_logits(mlp(model.q_y_net, {"x": x_l[i], "a": a}, None, 3))
            probabilities.append(Categorical(logits=logits).probs)
            per_sample_ce.append(-Categorical(logits=logits).log_prob(y_l[i]))
        averaged_ce.append(-torch.log(torch.stack(probabilities).mean(0)[y_l[i]]))
    difference = alpha * (torch.stack(averaged_ce).mean() - torch.stack(per_sample_ce).mean())
    torch.testing.assert_close(averaged.loss - per_sample.loss, difference, atol=1e-9, rtol=1e-9)
    assert difference < 0  # Jensen: the averaged softmax is never less likely than the average log
    torch.testing.assert_close(averaged.elbo, per_sample.elbo)


def test_weight_prior_adds_half_the_squared_weights_over_n(model):
    """-(1/N) log N(θ | 0, I) up to a constant: the weights of every linear map and label embedding."""
    for p in model.parameters():
        p.data.mul_(0.3)
    x, y = batch(4)
    g = torch.Generator().manual_seed(3)
    noise = Noise(torch.randn(4, 2, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 2, generator=g),
                  torch.randn(3, 4, 3, generator=g))
    without = semi_supervised_loss(model, x, y, x, noise, alpha=1.0).loss
    with_prior = semi_supervised_loss(model, x, y, x, noise, alpha=1.0, prior_scale=1 / 50).loss
    weights = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Embedding))]
    expected = sum(-Normal(0.0, 1.0).log_prob(w).sum() - w.numel() * 0.5 * math.log(2 * math.pi) for w in weights)
    torch.testing.assert_close(with_prior - without, expected / 50)


def test_classification_on_other_images_changes_only_the_classification_term(model):
    """x_c: the cross-entropy of q(y | a, x_c), a ~ q(a | x_c) from the labelled a-noise, per example
    against the reference forward pass; the bounds stay those of x_l; x_c = x_l gives the plain loss."""
    for p in model.parameters():
        p.data.mul_(0.3)
    x_l, y_l = batch(4)
    x_c = 1 - x_l  # other images, given y_l's labels
    x_u, _ = batch(3)
    alpha = 1.5
    g = torch.Generator().manual_seed(5)
    noise = Noise(torch.randn(4, 2, generator=g), torch.randn(4, 3, generator=g), torch.randn(3, 2, generator=g),
                  torch.randn(3, 3, 3, generator=g))
    plain = semi_supervised_loss(model, x_l, y_l, x_u, noise, alpha)
    same = semi_supervised_loss(model, x_l, y_l, x_u, noise, alpha, x_c=x_l)
    other = semi_supervised_loss(model, x_l, y_l, x_u, noise, alpha, x_c=x_c)
    torch.testing.assert_close(same.loss, plain.loss)

    def cross_entropy(images):
        total = 0
        for i in range(4):
            a, _ = sample_a(model, images[i], noise.a_labelled[i])
            logits = model.q_y_logits(mlp(model.q_y_net, {"x": images[i], "a": a}, None, 3))
            total = total - Categorical(logits=logits).log_prob(y_l[i])
        return total / 4

    expected = alpha * (cross_entropy(x_c) - cross_entropy(x_l))
    torch.testing.assert_close(other.loss - plain.loss, expected, atol=1e-9, rtol=1e-9)
    assert abs(expected) > 1e-5  # the images differ enough for the test to see a swap (its tolerance is 1e-9)
    torch.testing.assert_close(other.elbo, plain.elbo)


@pytest.mark.parametrize("use_shifted", [False, True])
def test_classifier_draws_average_q_y_over_their_own_samples_of_a(model, use_shifted):
    """Noise.a_classifier (S_c draws per labelled image): the cross-entropy is -log (1/S_c) Σ_s q(y | a_s, x)
    on the first B_l rows of x_c (or x_l), per example and per draw against the reference; the bounds and
    the MC-repeated batch (S = 2) are unchanged."""
    for p in model.parameters():
        p.data.mul_(0.3)
    x_l, y_l = batch(4)
    x_u, _ = batch(3)
    x_c = 1 - x_l if use_shifted else None
    S, S_c, alpha = 2, 5, 1.5
    g = torch.Generator().manual_seed(8)
    noise = Noise(torch.randn(S * 4, 2, generator=g), torch.randn(S * 4, 3, generator=g),
                  torch.randn(S * 3, 2, generator=g), torch.randn(3, S * 3, 3, generator=g))
    with_draws = Noise(noise.a_labelled, noise.z_labelled, noise.a_unlabelled, noise.z_unlabelled,
                       torch.randn(S_c, 4, 2, generator=g))
    args = (model, x_l.repeat(S, 1), y_l.repeat(S), x_u.repeat(S, 1))
    repeated_c = None if x_c is None else x_c.repeat(S, 1)
    plain = semi_supervised_loss(*args, noise, alpha, samples=S, x_c=repeated_c)
    drawn = semi_supervised_loss(*args, with_draws, alpha, samples=S, x_c=repeated_c)

    images = x_l if x_c is None else x_c
    plain_ce, drawn_ce = [], []
    for i in range(4):
        def q_y(eps):
            a, _ = sample_a(model, images[i], eps)
            return Categorical(logits=model.q_y_logits(mlp(model.q_y_net, {"x": images[i], "a": a}, None, 3))).probs

        plain_ce.append(-torch.log(torch.stack([q_y(noise.a_labelled[s * 4 + i]) for s in range(S)]).mean(0)[y_l[i]]))
        drawn_ce.append(-torch.log(torch.stack([q_y(with_draws.a_classifier[s, i]) for s in range(S_c)]).mean(0)[y_l[i]]))
    expected = alpha * (torch.stack(drawn_ce).mean() - torch.stack(plain_ce).mean())
    torch.testing.assert_close(drawn.loss - plain.loss, expected, atol=1e-9, rtol=1e-9)
    assert abs(expected) > 1e-5  # other draws of a: the test can see a swap of the two
    torch.testing.assert_close(drawn.elbo, plain.elbo)
