import torch

from gandemo.nets.dcgan import Discriminator, Generator
from training.loop import Amp
from training.steps import dcgan_step


def test_dcgan_step_updates_both_players_and_reports_d_outputs():
    torch.manual_seed(0)
    G, D = Generator(z_dim=8, ngf=4), Discriminator(ndf=4)
    opts = {"G": torch.optim.Adam(G.parameters(), 1e-3), "D": torch.optim.Adam(D.parameters(), 1e-3)}
    before = {n: [p.clone() for p in m.parameters()] for n, m in (("G", G), ("D", D))}
    out = dcgan_step(
        G, D, opts, torch.rand(4, 3, 64, 64) * 2 - 1, torch.randn(4, 8), Amp(torch.device("cpu"), enabled=False)
    )
    for name, m in (("G", G), ("D", D)):
        assert any(not torch.equal(a, b) for a, b in zip(before[name], m.parameters(), strict=True)), name
    assert set(out) == {"loss_d", "loss_g", "D(x)", "D(G(z))"}
    assert all(torch.isfinite(v) and not v.requires_grad for v in out.values())
    assert 0 < out["D(x)"] < 1 and 0 < out["D(G(z))"] < 1
