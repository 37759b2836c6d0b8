"""The networks: the write-up's three (Generator, Discriminator, Encoder) and, below them, the
conditional heading-aware model built beside it (TileEncoder, ConditionalGenerator,
ConditionalDiscriminator).

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
import torch.nn.functional as F

from .world import CLASS_NAMES


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
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


# ---------------------------------------------------------------------------------------------
# The conditional, heading-aware model: beside the write-up's, not instead of it.
#
#   TileEncoder              heading-up tile 128x128 -> a spatial code (ncode x 4 x 4): what
#                            stands ahead, left and right (woods, houses, water)
#   ConditionalGenerator     the write-up's decoder (4x4 start, five ConvTranspose 4x4 stride-2
#                            layers) driven by that code, a free 4-dim z, and the tile warped
#                            into the view's frame (geometry.warp_to_view), fed to every layer
#   ConditionalDiscriminator the write-up's D on the view concatenated with the warped tile, so
#                            a view that contradicts its tile is fake
#
# Why these parts (measured on the built-in world, README "The conditional model"): the warped
# tile alone already predicts the ground in front; what it cannot show (woods and houses that
# stand up from the ground, the horizon beyond 64 m, the sky) the decoder must add. So the
# warped tile enters each layer at that layer's resolution (a cheap SPADE: concatenation of the
# resized condition map, which is aligned with the output), the tile code enters at 4x4 where
# the decoder decides the scene's layout, and z modulates every layer (FiLM) so that it can
# change light and sky everywhere at once. z also projects to 4x4 as in the write-up's G, its
# strongest path; on the start's top row only (z_rows 1 in the presets), so that it moves the
# sky and leaves the ground to the tile: through the decoder's kernels that row reaches down to
# row 63 of 128, and the ground band starts at row 64.

WARP_CHANNELS = 4  # the warped tile (RGB in [-1, 1], 0 where unfilled) and its mask (0/1)


class TileEncoder(nn.Module):
    """Heading-up satellite tile -> spatial code, from the tile at half resolution (64 px, 2 m/px:
    the code summarises 4x4 cells of 32 m, and the full-resolution detail reaches the view
    through the warp anyway; a quarter of the cost). Four of D's stride-2 layers."""

    def __init__(self, nef: int = 64, ncode: int = 64, nc: int = 3):
        super().__init__()
        trunk = _down_trunk(nc, nef)
        self.main = nn.Sequential(trunk[0], trunk[1], *trunk[5:])  # without D's second 2x step
        # input is (nc) x 64 x 64; state size. (nef*8) x 4 x 4
        self.head = nn.Conv2d(nef * 8, ncode, 1)
        # state size. ncode x 4 x 4
        self.apply(init_dcgan_weights)

    def forward(self, tile: torch.Tensor) -> torch.Tensor:
        return self.head(self.main(F.avg_pool2d(tile, 2)))


def warp_at(x: torch.Tensor, warp: torch.Tensor) -> torch.Tensor:
    """The warp pooled to the size of the features `x` and in their dtype: under bf16 autocast a
    float32 warp would make the concatenation float32, and the next layer would cast all of it
    back (on CPU the copy cost more than the pooling; the values are the same either way)."""
    return F.adaptive_avg_pool2d(warp, x.shape[-1]).to(x.dtype)


class FiLMUp(nn.Module):
    """One decoder layer: [features, warped condition at this size] -> ConvTranspose 4x4 stride 2
    -> BatchNorm without its own affine -> scale and shift from z (FiLM) -> ReLU."""

    def __init__(self, cin: int, cout: int, nz: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin + WARP_CHANNELS, cout, 4, 2, 1, bias=False)
        self.norm = nn.BatchNorm2d(cout, affine=False)
        self.film = nn.Linear(nz, 2 * cout)
        nn.init.zeros_(self.film.weight)  # starts as plain BatchNorm (scale 1, shift 0)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, warp: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = self.conv(torch.cat([x, warp_at(x, warp)], 1))
        gamma, beta = self.film(z).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return F.relu(self.norm(x) * (1 + gamma) + beta)


class ConditionalGenerator(nn.Module):
    def __init__(self, nz: int = 4, ngf: int = 64, nef: int = 64, ncode: int = 64, nc: int = 3, z_rows: int = 4):
        super().__init__()
        self.nz = nz
        # z's 4x4 projection is kept on the top z_rows rows of the start only (4: everywhere, as in the
        # write-up's G). It is z's main path into the view, and on the ground rows it moved the ground
        # with the sky (README: why a draw's ground read worse); FiLM's scale and shift barely move either.
        if not 0 <= z_rows <= 4:
            raise ValueError(f"z_rows {z_rows}: the 4x4 start has rows 0 to 4 for z's projection to reach")
        self.z_rows = z_rows
        self.tile_encoder = TileEncoder(nef, ncode, nc)
        # z projects to 4x4 as in the write-up's G; the tile code and the warped tile join it there
        self.project = nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False)
        self.start = nn.Sequential(
            nn.Conv2d(ngf * 8 + ncode + WARP_CHANNELS, ngf * 8, 1, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True))
        # state size. (ngf*8) x 4 x 4
        self.ups = nn.ModuleList([
            FiLMUp(ngf * 8, ngf * 4, nz),  # state size. (ngf*4) x 8 x 8
            FiLMUp(ngf * 4, ngf * 2, nz),  # state size. (ngf*2) x 16 x 16
            FiLMUp(ngf * 2, ngf, nz),      # state size. (ngf) x 32 x 32
            FiLMUp(ngf, ngf, nz),          # state size. (ngf) x 64 x 64
        ])
        self.out = nn.ConvTranspose2d(ngf + WARP_CHANNELS, nc, 4, 2, 1, bias=False)
        # state size. (nc) x 128 x 128, after tanh in [-1, 1]
        self.apply(init_dcgan_weights)

    @torch.no_grad()
    def start_from(self, G: Generator) -> None:
        """Start the decoder from a trained write-up G of the same widths, so that at step 0 it
        draws that G's landscapes (the condition enters through weights that start at zero; with
        z_rows < 4 the start's lower rows are those of that G's z = 0 landscape):
        its projection, its layers with zero weights for the warp's extra input channels, and
        its BatchNorm scales and shifts as the FiLM layers' constant part."""
        ngf8 = self.project.out_channels
        if G.main[0].weight.shape != self.project.weight.shape or G.main[15].weight.shape[0] != self.out.weight.shape[0] - WARP_CHANNELS:
            raise ValueError(f"the GAN's widths (nz {G.main[0].weight.shape[0]}, ngf {G.main[15].weight.shape[0]}) "
                             f"differ from this model's (nz {self.nz}, ngf {self.out.weight.shape[0] - WARP_CHANNELS})")
        self.project.weight.copy_(G.main[0].weight)
        conv, bn = self.start[0], self.start[1]
        conv.weight.zero_()
        conv.weight[:, :ngf8, 0, 0] = torch.eye(ngf8)  # pass the projection through unchanged
        bn.load_state_dict(G.main[1].state_dict())
        for up, (c, b) in zip(self.ups, ((3, 4), (6, 7), (9, 10), (12, 13))):
            up.conv.weight.zero_()
            up.conv.weight[:-WARP_CHANNELS] = G.main[c].weight
            up.norm.running_mean.copy_(G.main[b].running_mean)
            up.norm.running_var.copy_(G.main[b].running_var)
            up.film.bias.copy_(torch.cat([G.main[b].weight - 1, G.main[b].bias]))
        self.out.weight.zero_()
        self.out.weight[:-WARP_CHANNELS] = G.main[15].weight

    def forward(self, tile: torch.Tensor, warp: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """tile: heading-up tile N x 3 x 128 x 128; warp: N x 4 x 128 x 128 (the tile in the view's
        frame and its mask); z: N x nz. Returns the view N x 3 x 128 x 128 in [-1, 1]."""
        code = self.tile_encoder(tile)
        x = self.project(z.reshape(z.shape[0], self.nz, 1, 1))
        x = F.pad(x[:, :, :self.z_rows], (0, 0, 0, x.shape[2] - self.z_rows))  # z off the lower rows
        x = self.start(torch.cat([x, code, warp_at(x, warp)], 1))
        for up in self.ups:
            x = up(x, warp, z)
        x = self.out(torch.cat([x, warp_at(x, warp)], 1))
        return torch.tanh(x)


class ConditionalDiscriminator(Discriminator):
    """The write-up's D on [view, warped tile, mask]: 7 input channels, one logit."""

    def __init__(self, ndf: int = 64, nc: int = 3):
        super().__init__(ndf, nc + WARP_CHANNELS)

    @torch.no_grad()
    def start_from(self, D: Discriminator) -> None:
        """Start from a trained write-up D of the same width: its weights, and zero weights for
        the warp's channels, so that at step 0 it judges the view as that D did."""
        state = D.state_dict()
        first = state["main.0.weight"]
        if first.shape[0] != self.main[0].weight.shape[0]:
            raise ValueError(f"the GAN's D width {first.shape[0]} differs from this model's {self.main[0].weight.shape[0]}")
        state["main.0.weight"] = torch.cat([first, first.new_zeros(first.shape[0], WARP_CHANNELS, *first.shape[2:])], 1)
        self.load_state_dict(state)

    def forward(self, view: torch.Tensor, warp: torch.Tensor, return_features: bool = False):
        return super().forward(torch.cat([view, warp], 1), return_features)


# ---------------------------------------------------------------------------------------------
# The segmenter: labels every pixel of a view with its land-cover class. It judges predicted
# views (segment.py, evaluate.py) and, trained online, is the conditional model's semantic critic.

def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Segmenter(nn.Module):
    """Views in [-1, 1] (N x 3 x H x W) -> class logits N x n_classes x H' x W for the rows from
    `top` (a fraction of the height) down; `segment` puts them in place.

    A small U-Net: a stride-2 stem (the texture of field rows and grass is read at full
    resolution, the rest runs at 1/2 to 1/8), a dilated stage, the image's mean feature broadcast
    back (the whole foreground is often one field or meadow), and two skip connections up.
    The fourth input channel is the row, -1 at the top of the view and 1 at the bottom.
    """

    def __init__(self, n_classes: int = len(CLASS_NAMES), width: int = 16, top: float = 0.0, channels: int = 3):
        super().__init__()
        self.n_classes, self.top = n_classes, top
        w = width
        self.stem = nn.Sequential(_block(channels + 1, w, stride=2), _block(w, w))             # 1/2
        self.down1 = nn.Sequential(_block(w, 2 * w, stride=2), _block(2 * w, 2 * w))           # 1/4
        self.down2 = nn.Sequential(_block(2 * w, 4 * w, stride=2), _block(4 * w, 4 * w, dilation=2))  # 1/8
        self.context = nn.Sequential(nn.Linear(4 * w, 4 * w), nn.ReLU(inplace=True))
        self.up1 = nn.Sequential(nn.Conv2d(10 * w, 2 * w, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True))
        self.up2 = _block(3 * w, w)
        self.head = nn.Conv2d(w, n_classes, 1)

    def first_row(self, height: int) -> int:
        return round(self.top * height)

    def inputs(self, views: torch.Tensor) -> torch.Tensor:
        """The view's (or warp's) labelled rows plus the row channel: N x (C + 1) x H' x W."""
        n, _, h, w = views.shape
        rows = torch.linspace(-1, 1, h, device=views.device, dtype=views.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
        return torch.cat([views, rows], 1)[:, :, self.first_row(h):]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` from `inputs`; logits at its size."""
        s0 = self.stem(x)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        s2 = torch.cat([s2, self.context(s2.mean((2, 3)))[:, :, None, None].expand_as(s2)], 1)
        u = self.up1(torch.cat([F.interpolate(s2, size=s1.shape[-2:], mode="bilinear", align_corners=False), s1], 1))
        u = self.up2(torch.cat([F.interpolate(u, size=s0.shape[-2:], mode="bilinear", align_corners=False), s0], 1))
        return F.interpolate(self.head(u), size=x.shape[-2:], mode="bilinear", align_corners=False)
