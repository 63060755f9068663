"""Loss pieces shared by the trainable systems (WGAN-GP, attention regularisers, identity, VGG19 perceptual).

Every function averages over the batch, so loss weights do not depend on the batch size (GANimation
divided some terms by its batch size of 25; the system configs document the converted weights).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganime_age.errors import ModelFileNotFoundError, WeightsError

# -- WGAN-GP ----------------------------------------------------------------------------------------


def critic_score(realism: torch.Tensor) -> torch.Tensor:
    """One WGAN score per image: the mean of the critic's realism map (N, 1, h, w) -> (N,)."""
    return realism.float().reshape(realism.shape[0], -1).mean(dim=1)


def wgan_critic_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """E[D(fake)] - E[D(real)]: the critic's Wasserstein estimate, minimised."""
    return fake_score.mean() - real_score.mean()


def wgan_generator_loss(fake_score: torch.Tensor) -> torch.Tensor:
    return -fake_score.mean()


def interpolate(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Random points on the lines between real and fake images (one mixing weight per sample), a grad leaf."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    return (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)


def random_shift(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Translate each image by up to ±`max_shift` pixels (edge-replicated), differentiably.

    Put in front of a frozen network used as a loss, so the generator cannot satisfy it with a pattern
    tied to exact pixel positions (the speckles that fool a network but not an eye).
    """
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2)).tolist()
    return torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])


def luma(images: torch.Tensor) -> torch.Tensor:
    """The brightness (Y, BT.601) of RGB images (N, 3, H, W) -> (N, 1, H, W)."""
    r, g, b = images.float().unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b)[:, None]


def chroma(images: torch.Tensor) -> torch.Tensor:
    """The colour (Cb, Cr, BT.601) of RGB images (N, 3, H, W) -> (N, 2, H, W)."""
    r, g, b = images.float().unbind(1)
    return torch.stack([-0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b], dim=1)


def grey_copy(images: torch.Tensor) -> torch.Tensor:
    """RGB images with their colour taken out: the brightness on all three channels (N, 3, H, W)."""
    return luma(images).expand(-1, 3, -1, -1)


def chroma_detail(images: torch.Tensor) -> torch.Tensor:
    """The colour (Cb, Cr, BT.601) detail finer than 3 pixels of RGB images (N, 3, H, W) -> (N, 2, H, W).

    Skin is smooth in colour (texture and wrinkles live in brightness) and photos carry little fine
    chroma, while GAN speckles and tinted blotches are exactly that: the artefact measure and its loss.
    """
    colour = chroma(images)
    return colour - F.avg_pool2d(F.pad(colour, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def chroma_detail_loss(edited: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Mean squared fine colour detail that an edit adds to (or removes from) its source image."""
    return (chroma_detail(edited) - chroma_detail(source)).pow(2).mean()


def checkerboard_detail(images: torch.Tensor) -> torch.Tensor:
    """The 2-pixel checkerboard component of the brightness of RGB images (N, 3, H, W) -> (N, 1, H-1, W-1).

    Transposed-convolution generators leave a hatched period-2 texture that photos (demosaiced, compressed,
    resized) barely have and that wrinkles, lashes and hair, wider than a pixel, barely excite.
    """
    brightness = luma(images)
    kernel = brightness.new_tensor([[[[0.25, -0.25], [-0.25, 0.25]]]])
    return F.conv2d(brightness, kernel)


def checkerboard_loss(edited: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Mean squared checkerboard texture that an edit adds to (or removes from) its source image."""
    return (checkerboard_detail(edited) - checkerboard_detail(source)).pow(2).mean()


def gradient_penalty(score: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """(||∇_x D(x)||₂ - 1)² averaged over the batch (Gulrajani et al. 2017).

    `score` (N,) must come from `inputs` (N, ...) with the graph kept. The gradient is taken with
    ``create_graph`` (double backward); under bf16 autocast the critic's backward runs in bf16 but the
    gradient is upcast to fp32 before the norm, and bf16's fp32 range needs no loss scaling.
    """
    (grad,) = torch.autograd.grad(score.sum(), inputs, create_graph=True)
    norm = grad.float().reshape(grad.shape[0], -1).norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()


def r1_penalty(score: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[||∇_x D(x)||²] on real images only, averaged over the batch.

    `score` (N,) must come from `real` (N, ...) with ``requires_grad`` set and the graph kept; the
    gradient is taken with ``create_graph`` so the penalty trains the critic (StyleGAN2 weights it by γ/2).
    """
    (grad,) = torch.autograd.grad(score.float().sum(), real, create_graph=True)
    return grad.float().pow(2).reshape(grad.shape[0], -1).sum(dim=1).mean()


# -- hinge (SAGAN / BigGAN style) ------------------------------------------------------------------------


def hinge_critic_loss(real_realism: torch.Tensor, fake_realism: torch.Tensor) -> torch.Tensor:
    """E[relu(1 - D(real))] + E[relu(1 + D(fake))] over every patch of the realism maps."""
    return F.relu(1.0 - real_realism.float()).mean() + F.relu(1.0 + fake_realism.float()).mean()


def hinge_generator_loss(fake_realism: torch.Tensor) -> torch.Tensor:
    return -fake_realism.float().mean()


# -- attention-mask regularisers (GANimation) ---------------------------------------------------------


def mask_mean(mask: torch.Tensor) -> torch.Tensor:
    """Mean attention: keeps the mask from saturating at 1 (copying the input is the trivial optimum)."""
    return mask.float().mean()


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV summed over each image's pixels (GANimation's smoothness term), averaged over the batch."""
    m = mask.float()
    dx = (m[..., :, 1:] - m[..., :, :-1]).abs().reshape(m.shape[0], -1).sum(dim=1)
    dy = (m[..., 1:, :] - m[..., :-1, :]).abs().reshape(m.shape[0], -1).sum(dim=1)
    return (dx + dy).mean()


# -- identity ---------------------------------------------------------------------------------------


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - cos(a, b) per pair, averaged: 0 for the same embedding direction."""
    return (1.0 - F.cosine_similarity(a.float(), b.float(), dim=1)).mean()


def identity_loss(recognizer: torch.nn.Module, reference: torch.Tensor, edited: torch.Tensor) -> torch.Tensor:
    """1 - cos between face-recogniser embeddings of the edited faces and (constant) references."""
    with torch.no_grad():
        target = recognizer.embed_aligned(reference.float())
    return cosine_distance(recognizer.embed_aligned(edited.float()), target)


# -- VGG19 perceptual loss (pure torch; weights from a given file) ---------------------------------------

# torchvision's vgg19 "features" layout: numbers are conv output channels, "M" a 2x2 max-pool.
VGG19_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
# Indices (in the "features" Sequential) of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
VGG19_DEFAULT_LAYERS: tuple[int, ...] = (1, 6, 11, 20, 29)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """VGG19's convolutional part with torchvision's parameter names (``features.<i>.weight``).

    Loads a state dict of torchvision's ``vgg19`` (ImageNet) from a .safetensors or .pth file; the
    classifier's tensors, if present, are ignored. Takes images in [-1, 1]; returns the activations
    after the ReLUs listed in `layers`.
    """

    def __init__(self, layers: Sequence[int] = VGG19_DEFAULT_LAYERS) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        channels = 3
        for item in VGG19_LAYOUT:
            if item == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules += [nn.Conv2d(channels, int(item), 3, 1, 1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.layers = tuple(sorted(layers))
        if not self.layers or self.layers[-1] >= len(modules) or not isinstance(modules[self.layers[-1]], nn.ReLU):
            raise ValueError(f"VGG19 feature layers must be ReLU indices below {len(modules)}, got {layers}")
        self.features = nn.Sequential(*modules[: self.layers[-1] + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)

    def load_file(self, path: str | Path) -> VGG19Features:
        """Load torchvision-layout VGG19 weights (strict for the layers this extractor uses)."""
        file = Path(path)
        if not file.is_file():
            raise ModelFileNotFoundError(f"VGG19 weights file not found: {file}")
        try:
            if file.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(file), device="cpu")
            else:
                state = torch.load(str(file), map_location="cpu", weights_only=True)
        except Exception as error:  # corrupt or foreign file formats raise many different types
            raise WeightsError(f"{file} is not a readable VGG19 weights file: {error}") from error
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        needed = self.state_dict()
        picked = {k: v for k, v in state.items() if k in needed}
        missing = sorted(set(needed) - set(picked))
        misshapen = sorted(k for k in picked if tuple(picked[k].shape) != tuple(needed[k].shape))
        if missing or misshapen:
            raise WeightsError(
                f"{file} does not hold torchvision VGG19 weights: missing {missing[:4]}, wrong shape {misshapen[:4]}"
            )
        self.load_state_dict(picked)
        return self

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = ((images + 1) / 2 - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.layers:
                outputs.append(x)
        return outputs


def perceptual_loss(
    extractor: Callable[[torch.Tensor], list[torch.Tensor]],
    a: torch.Tensor,
    b: torch.Tensor,
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Weighted L1 between feature maps of `a` and `b` (mean over elements per layer)."""
    feats_a, feats_b = extractor(a), extractor(b)
    weights = weights or [1.0] * len(feats_a)
    total = a.new_zeros((), dtype=torch.float32)
    for w, fa, fb in zip(weights, feats_a, feats_b, strict=True):
        total = total + w * F.l1_loss(fa.float(), fb.float())
    return total
