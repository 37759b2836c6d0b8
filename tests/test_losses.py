"""Every encoder loss: finite, about 0 for identical images, larger for different ones, and
its gradient reaches the encoder through the frozen generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sat2scape import losses
from sat2scape.data import to_float
from sat2scape.models import Discriminator, Encoder, Generator
from test_encoder import smooth_image


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    batch = torch.from_numpy(np.stack([smooth_image(rng) for _ in range(6)])).permute(0, 3, 1, 2)
    return to_float(batch)


@pytest.fixture(scope="module")
def discriminator():
    torch.manual_seed(0)
    return Discriminator(ndf=8).eval().requires_grad_(False)


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_loss_is_zero_for_identical_and_larger_for_different(name, images, discriminator):
    loss = losses.make_loss(name, discriminator=discriminator)
    a, b = images[:3], images[3:]
    same, different = loss(a, a.clone()), loss(a, b)
    assert same.shape == different.shape == (3,)
    assert torch.isfinite(same).all() and torch.isfinite(different).all()
    assert same.abs().max() < 1e-4, same
    assert (different > same + 1e-3).all(), (same, different)


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_gradient_reaches_the_encoder(name, images, discriminator):
    torch.manual_seed(0)
    E, G = Encoder(nz=4, nef=8), Generator(nz=4, ngf=8).eval().requires_grad_(False)
    loss_fn = losses.make_loss(name, discriminator=discriminator)
    z = E(images[:4])
    loss = loss_fn(G(z), images[2:]).mean() + 0.01 * losses.latent_prior(z).mean()
    loss.backward()
    grads = [p.grad for p in E.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in G.parameters())


def test_custom_loss_needs_the_discriminator_unless_feature_matching_is_off(images):
    with pytest.raises(ValueError, match="discriminator"):
        losses.make_loss("custom")(images[:2], images[2:4])
    assert torch.isfinite(losses.make_loss("custom", fm_weight=0)(images[:2], images[2:4])).all()


def test_loss_matrix_puts_identical_pairs_on_the_diagonal(images, discriminator):
    matrix = losses.loss_matrix(losses.make_loss("custom", discriminator=discriminator), images[:3], images[:3])
    assert matrix.shape == (3, 3)
    assert (matrix.argmin(1) == torch.arange(3)).all()


def test_latent_prior():
    z = torch.tensor([[0.0, 0, 0, 0], [1.0, 1, 1, 1]])
    assert torch.allclose(losses.latent_prior(z), torch.tensor([0.0, 2.0]))
