"""Randomly initialised Stable Diffusion 1.5 + ControlNet pipelines built from configs, nothing downloaded.

Two sizes share one code path:

- ``"full"``: the real SD1.5 shapes (UNet 320/640/1280/1280 with 768-d cross-attention, its ControlNet, the
  4-level VAE and a 12-layer 768-d CLIP text encoder), so a benchmark does exactly the compute of the real
  weights;
- ``"tiny"``: the same topology (8x VAE downsampling, cross-attention blocks, ControlNet conditioning embedding)
  with a few channels, so CI can run the whole augmentation pipeline on CPU in seconds.

The CLIP tokenizer is a byte-level BPE with the 256 byte symbols and a handful of merges, written as
``vocab.json`` + ``merges.txt``: it tokenises any prompt, which is all a random text encoder needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SIZES = ("tiny", "full")
SD15_LATENT_CHANNELS = 4
SD15_VAE_SCALING = 0.18215
CLIP_MAX_LENGTH = 77
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# A few merges so real words get multi-character tokens (exercises the BPE path).
_MERGES = ("p h", "o t", "ph ot", "o t</w>", "a g", "e d", "ag ed", "y e", "ye a", "yea r", "f a", "fa c", "fac e")


def _configs(size: str) -> dict[str, dict[str, Any]]:
    if size not in SIZES:
        raise ValueError(f"unknown pipeline size {size!r}; choose one of {', '.join(SIZES)}")
    if size == "full":
        unet = {
            "sample_size": 64,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            "block_out_channels": (320, 640, 1280, 1280),
            "layers_per_block": 2,
            "cross_attention_dim": 768,
            "attention_head_dim": 8,
            "norm_num_groups": 32,
        }
        vae = {
            "block_out_channels": (128, 256, 512, 512),
            "layers_per_block": 2,
            "norm_num_groups": 32,
            "sample_size": 512,
        }
        text = {
            "vocab_size": 49408,
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "projection_dim": 768,
            "hidden_act": "quick_gelu",
        }
        conditioning = (16, 32, 96, 256)
    else:
        unet = {
            "sample_size": 8,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
            "block_out_channels": (16, 32),
            "layers_per_block": 1,
            "cross_attention_dim": 32,
            "attention_head_dim": 4,
            "norm_num_groups": 8,
        }
        vae = {
            "block_out_channels": (8, 8, 16, 16),
            "layers_per_block": 1,
            "norm_num_groups": 8,
            "sample_size": 64,
        }
        text = {
            "vocab_size": 1000,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "projection_dim": 32,
            "hidden_act": "quick_gelu",
        }
        conditioning = (8, 8, 16, 16)
    levels = len(vae["block_out_channels"])
    vae.update(
        {
            "in_channels": 3,
            "out_channels": 3,
            "latent_channels": SD15_LATENT_CHANNELS,
            "down_block_types": ("DownEncoderBlock2D",) * levels,
            "up_block_types": ("UpDecoderBlock2D",) * levels,
            "scaling_factor": SD15_VAE_SCALING,
        }
    )
    text["max_position_embeddings"] = CLIP_MAX_LENGTH
    scheduler = {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
    }
    return {"unet": unet, "vae": vae, "text_encoder": text, "scheduler": scheduler, "conditioning": conditioning}


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (printable Latin-1 kept, the rest shifted)."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, shifted = [], 0
    for byte in range(256):
        if byte in kept:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def write_tokenizer_files(folder: str | Path) -> Path:
    """Write a tiny CLIP BPE vocabulary (vocab.json, merges.txt) into `folder` and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for symbol in _byte_symbols():
        vocab[symbol] = len(vocab)
    for symbol in _byte_symbols():
        vocab[symbol + "</w>"] = len(vocab)
    for merge in _MERGES:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_MERGES) + "\n", encoding="utf-8")
    return folder


def build_tokenizer(folder: str | Path) -> Any:
    """A CLIPTokenizer over the tiny vocabulary written into `folder`."""
    from transformers import CLIPTokenizer

    write_tokenizer_files(folder)
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=CLIP_MAX_LENGTH)


def build_components(size: str, work_dir: str | Path, *, seed: int = 0, device: Any = None) -> dict[str, Any]:
    """Random SD1.5-shaped components (vae, text_encoder, tokenizer, unet, controlnet, scheduler) in fp32.

    `device` initialises the networks' parameters directly there (the full size has ~1.4 B of them, slow to
    initialise on a CPU); the tokenizer and scheduler stay plain CPU objects.
    """
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    configs = _configs(size)
    tokenizer = build_tokenizer(Path(work_dir) / "tokenizer")
    text_config = dict(configs["text_encoder"])
    text_config["vocab_size"] = max(text_config["vocab_size"], len(tokenizer))
    text_config.update(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    scheduler = DDIMScheduler(**configs["scheduler"])
    torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        unet = UNet2DConditionModel(**configs["unet"])
        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=configs["conditioning"])
        vae = AutoencoderKL(**configs["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_config))
    return {
        "vae": vae.eval(),
        "text_encoder": text_encoder.eval(),
        "tokenizer": tokenizer,
        "unet": unet.eval(),
        "controlnet": controlnet.eval(),
        "scheduler": scheduler,
    }


PIPELINE_CLASSES = {
    "txt2img": "StableDiffusionControlNetPipeline",
    "img2img": "StableDiffusionControlNetImg2ImgPipeline",
    "inpaint": "StableDiffusionControlNetInpaintPipeline",
}


def pipeline_class(mode: str) -> Any:
    """The diffusers ControlNet pipeline class for a generation mode (txt2img, img2img, inpaint)."""
    import diffusers

    try:
        return getattr(diffusers, PIPELINE_CLASSES[mode])
    except KeyError:
        raise ValueError(f"unknown generation mode {mode!r}; choose one of {', '.join(PIPELINE_CLASSES)}") from None


def build_random_pipeline(
    size: str, work_dir: str | Path, *, mode: str = "txt2img", seed: int = 0, device: Any = None
) -> Any:
    """A ready ControlNet pipeline (`mode`) of random SD1.5-shaped weights; no safety checker."""
    components = build_components(size, work_dir, seed=seed, device=device)
    return pipeline_class(mode)(
        **components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )


def save_random_pipeline(size: str, folder: str | Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Save a random base pipeline and its ControlNet as local Hub-layout folders: (base_dir, controlnet_dir).

    The augmentation script loads them exactly like real Hub ids, so tests exercise the real loading path.
    """
    folder = Path(folder)
    pipe = build_random_pipeline(size, folder / "_work", seed=seed)
    base_dir, controlnet_dir = folder / "base", folder / "controlnet"
    pipe.save_pretrained(base_dir, safe_serialization=True)
    pipe.controlnet.save_pretrained(controlnet_dir, safe_serialization=True)
    return base_dir, controlnet_dir
