"""The conv architecture scales with the resolution: levels until 4×4, channels doubling from 32, a few million
parameters at 64×64 RGB, output shaped like the input (padding and cropping for sizes that are not powers of 2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.config import ModelConfig
from engine.model import VAE, conv_levels, n_parameters


def _conv_params(c_in, c_out):  # a 4×4 convolution's weights and biases
    return c_in * c_out * 16 + c_out


@pytest.mark.parametrize("side,levels", [(28, 3), (32, 3), (64, 4), (128, 5)])
@pytest.mark.parametrize("channels", [1, 3])
def test_conv_levels_channels_parameters_and_shapes(side, levels, channels):
    cfg = ModelConfig(image_shape=(channels, side, side), arch="conv", latent_dim=8, hidden=400)
    model = VAE(cfg)
    assert conv_levels(side, side) == levels
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [32 * 2**i for i in range(levels)]
    assert all(m.stride == (2, 2) for m in convs)
    # parameters, counted by hand: convolutions + GroupNorm affine, then the dense bottleneck from a 4×4 map
    chans = [channels] + [32 * 2**i for i in range(levels)]
    conv = sum(_conv_params(a, b) + 2 * b for a, b in zip(chans, chans[1:]))  # encoder convs + norms
    deconv = sum(_conv_params(b, a) + 2 * a for a, b in zip(chans[1:-1], chans[2:])) + _conv_params(32, channels)
    flat = chans[-1] * 16
    dense = (flat * 400 + 400) + (400 * 16 + 16) + (8 * 400 + 400) + (400 * flat + flat)
    assert n_parameters(model) == conv + deconv + dense
    x = torch.rand(3, channels, side, side)
    with torch.no_grad():
        h = model.encoder.conv(torch.nn.functional.pad(x, model.encoder.geometry.pad))
        out, mu, log_var, z = model(x)
    assert h.shape == (3, chans[-1], 4, 4)  # the map is 4×4 before the bottleneck
    assert out.shape == x.shape and mu.shape == (3, 8) and log_var.shape == (3, 8)


def test_a_64_px_rgb_model_has_a_few_million_parameters_and_no_dense_layer_on_a_large_map():
    model = VAE(ModelConfig(image_shape=(3, 64, 64), arch="conv"))
    assert 2_000_000 < n_parameters(model) < 6_000_000
    biggest = max(m.in_features for m in model.modules() if isinstance(m, nn.Linear))
    assert biggest == 256 * 4 * 4


def test_odd_non_square_sizes_pad_and_crop():
    model = VAE(ModelConfig(image_shape=(3, 53, 40), arch="conv"))
    x = torch.rand(2, 3, 53, 40)
    with torch.no_grad():
        out = model(x)[0]
    assert out.shape == (2, 3, 53, 40)
    # one example's output does not depend on the others in its batch (GroupNorm, not BatchNorm)
    with torch.no_grad():
        eps = torch.zeros(1, 2)
        a = model(x[:1], eps)[0]
        b = model(x, torch.zeros(2, 2))[0][:1]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
