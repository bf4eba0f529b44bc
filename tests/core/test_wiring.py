"""Which inputs each network takes, pinned from the paper and not read from the model.

ADGM: q(a|x), q(y|a,x), q(z|a,y,x), p(a|x,y,z), p(x|y,z). SDGM: p(a|y,z), p(x|a,y,z), the same q.
Each input of each network is perturbed alone; the output must change exactly for the inputs the
paper lists. Every dimension differs (x: 12, a: 2, z: 3, K = 4) so that a swapped argument fails.
"""

import pytest
import torch

from adgm_core.config import ModelConfig
from adgm_core.model import ADGM

D, A, Z, K = 12, 2, 3, 4

PAPER = {
    False: {"q(a|x)": {"x"}, "q(y|a,x)": {"a", "x"}, "q(z|a,y,x)": {"a", "y", "x"},
            "p(a|.)": {"x", "y", "z"}, "p(x|.)": {"y", "z"}},
    True: {"q(a|x)": {"x"}, "q(y|a,x)": {"a", "x"}, "q(z|a,y,x)": {"a", "y", "x"},
           "p(a|.)": {"y", "z"}, "p(x|.)": {"a", "y", "z"}},
}


def networks(m: ADGM):
    """Each distribution as a function of all of (x, a, y, z), whatever it actually reads."""
    return {
        "q(a|x)": lambda x, a, y, z: torch.cat(m.infer_a(x), -1),
        "q(y|a,x)": lambda x, a, y, z: m.classify(x, a),
        "q(z|a,y,x)": lambda x, a, y, z: torch.cat(m.infer_z(x, a, y), -1),
        "p(a|.)": lambda x, a, y, z: torch.cat(m.generate_a(x, y, z), -1),
        "p(x|.)": lambda x, a, y, z: m.generate_x(y, z, a),
    }


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batch-norm"])
@pytest.mark.parametrize("skip", [False, True], ids=["ADGM", "SDGM"])
def test_each_network_reads_exactly_the_papers_inputs(skip, batch_norm):
    torch.manual_seed(0)
    m = ADGM(ModelConfig(x_shape=(3, 4), n_classes=K, a_dim=A, z_dim=Z, hidden=(8, 6), skip=skip,
                         batch_norm=batch_norm)).eval()
    for p in m.parameters():
        p.data.normal_(0, 0.5)
    base = dict(x=torch.rand(5, D), a=torch.randn(5, A), y=torch.tensor([0, 1, 2, 3, 0]), z=torch.randn(5, Z))
    changed = dict(x=torch.rand(5, D), a=torch.randn(5, A), y=torch.tensor([1, 2, 3, 0, 2]), z=torch.randn(5, Z))
    with torch.no_grad():
        for name, f in networks(m).items():
            reference = f(**base)
            reads = {key for key in base if not torch.allclose(f(**{**base, key: changed[key]}), reference)}
            assert reads == PAPER[skip][name], f"{name} reads {sorted(reads)}"
