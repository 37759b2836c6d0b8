"""The three networks of the write-up: Generator, Discriminator, Encoder.

    Generator      z (4) -> 4x4 -> five ConvTranspose 4x4 stride-2 layers -> 128x128x3
    Discriminator  128x128x3 -> five Conv 4x4 stride-2 layers -> 4x4 -> one logit (G mirrored)
    Encoder        128x128 satellite tile -> the same trunk as D -> a 4-dim latent

Channel widths. The write-up fixes only the projection (4 -> 8*ngf). The usual DCGAN-64 halves
the width at every upsampling; going to 128 px needs one layer more. We keep 8,4,2,1,1 x ngf
(the extra 128 px layer stays at ngf) rather than 8,8,4,2,1 x ngf: on CPU it costs 2.7x fewer
FLOPs for the same depth, and the widest layers work at the smallest resolutions where they
are cheap. The discriminator and encoder mirror it: 1,1,2,4,8 x ndf.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    def __init__(self, nz: int = 4, ngf: int = 64, nc: int = 3):
        super().__init__()
        self.nz = nz

        def up(cin, cout):  # 4x4 stride-2 transposed conv doubles the resolution
            return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

        self.main = nn.Sequential(
            # input is z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
            *up(ngf * 8, ngf * 4),
            # state size. (ngf*4) x 8 x 8
            *up(ngf * 4, ngf * 2),
            # state size. (ngf*2) x 16 x 16
            *up(ngf * 2, ngf),
            # state size. (ngf) x 32 x 32
            *up(ngf, ngf),
            # state size. (ngf) x 64 x 64
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
            # state size. (nc) x 128 x 128, in [-1, 1]
        )
        self.apply(init_dcgan_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(z.shape[0], self.nz, 1, 1))


def _down_trunk(nc: int, ndf: int) -> list[nn.Module]:
    """128x128 -> 4x4 with five 4x4 stride-2 convs: the discriminator's and the encoder's body."""

    def down(cin, cout):
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]

    return [
        # input is (nc) x 128 x 128; no BatchNorm on the first layer, as in DCGAN
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        # state size. (ndf) x 64 x 64
        *down(ndf, ndf),
        # state size. (ndf) x 32 x 32
        *down(ndf, ndf * 2),
        # state size. (ndf*2) x 16 x 16
        *down(ndf * 2, ndf * 4),
        # state size. (ndf*4) x 8 x 8
        *down(ndf * 4, ndf * 8),
        # state size. (ndf*8) x 4 x 4
    ]


class Discriminator(nn.Module):
    def __init__(self, ndf: int = 64, nc: int = 3):
        super().__init__()
        self.main = nn.Sequential(*_down_trunk(nc, ndf))
        self.head = nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False)
        # state size. 1 x 1 x 1: a logit (BCE-with-logits, so no sigmoid here)
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """The logit per image; with return_features also the activations after every LeakyReLU
        (used by the encoder's feature-matching loss)."""
        features = []
        for layer in self.main:
            x = layer(x)
            if return_features and isinstance(layer, nn.LeakyReLU):
                features.append(x)
        logit = self.head(x).flatten()
        return (logit, features) if return_features else logit


class Encoder(nn.Module):
    """Satellite tile -> latent z. The trunk mirrors D; the head predicts the 4 latent numbers."""

    def __init__(self, nz: int = 4, nef: int = 64, nc: int = 3):
        super().__init__()
        self.main = nn.Sequential(*_down_trunk(nc, nef))
        # state size. (nef*8) x 4 x 4
        self.head = nn.Conv2d(nef * 8, nz, 4, 1, 0)
        # state size. nz x 1 x 1
        self.apply(init_dcgan_weights)

    def forward(self, tile: torch.Tensor) -> torch.Tensor:
        return self.head(self.main(tile)).flatten(1)
