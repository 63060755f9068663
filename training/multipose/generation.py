"""The ControlNet backend: load the SD1.5 + ControlNet pipeline (Hub id or local folder), generate a batch of jobs."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .config import AugmentConfig, default_subfolder
from .judge import FaceJudge, Outcome
from .poses import Job
from .random_pipeline import pipeline_class


def resolve_dtype(name: str, device: Any) -> Any:
    import torch

    if name == "auto":
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    try:
        return {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float32": torch.float32, "fp32": torch.float32}[name]  # fmt: skip
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; choose auto, float16, bfloat16 or float32") from None


def load_pipeline(config: AugmentConfig, device: Any) -> Any:
    """The ControlNet pipeline for ``config.mode``, on `device`, without a safety checker.

    Models are loaded by Hub id or local path (``base_model``, ``controlnet``); the ControlNet's known
    subfolder (``diffusion_sd15`` for CrucibleAI/ControlNetMediaPipeFace) is used when ``controlnet_subfolder``
    is "auto".
    """
    from diffusers import ControlNetModel

    dtype = resolve_dtype(config.dtype, device)
    subfolder = config.controlnet_subfolder
    if subfolder == "auto":
        subfolder = default_subfolder(config.controlnet)
    with warnings.catch_warnings():  # diffusers >= 0.36 renames torch_dtype to dtype; older ones only know torch_dtype
        warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
        controlnet = ControlNetModel.from_pretrained(config.controlnet, subfolder=subfolder or None, torch_dtype=dtype)
        pipe = pipeline_class(config.mode).from_pretrained(
            config.base_model, controlnet=controlnet, torch_dtype=dtype, safety_checker=None,
            requires_safety_checker=False, feature_extractor=None, revision=config.revision,
        )  # fmt: skip
    return prepare_pipeline(pipe, device, channels_last=config.channels_last, compile=config.compile)


def prepare_pipeline(pipe: Any, device: Any, *, channels_last: bool = False, compile: bool = False) -> Any:
    """Move to `device`, pick PyTorch's SDPA attention, optionally channels_last / torch.compile the denoisers."""
    import torch
    from diffusers.models.attention_processor import AttnProcessor2_0

    pipe = pipe.to(device)
    for name in ("unet", "controlnet"):
        model = getattr(pipe, name)
        model.set_attn_processor(AttnProcessor2_0())
        if channels_last:
            model.to(memory_format=torch.channels_last)
        if compile:
            setattr(pipe, name, torch.compile(model))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe: Any, jobs: list[Job], config: AugmentConfig) -> list[np.ndarray]:
    """Generate one image per job (uint8 RGB at the generation resolution), each from its own seed."""
    import torch
    from PIL import Image

    # CPU generators: the initial noise of a seed is then the same on any GPU or CPU (diffusers moves it over)
    generators = [torch.Generator(device="cpu").manual_seed(job.seed) for job in jobs]
    controls = [Image.fromarray(job.control) for job in jobs]
    common: dict[str, Any] = {
        "prompt": [job.prompt for job in jobs],
        "negative_prompt": [job.negative_prompt for job in jobs],
        "num_inference_steps": config.steps,
        "guidance_scale": config.guidance_scale,
        "controlnet_conditioning_scale": config.controlnet_scale,
        "generator": generators,
        "height": config.resolution,
        "width": config.resolution,
        "output_type": "np",
    }
    if config.mode == "txt2img":
        result = pipe(image=controls, **common)
    else:
        sources = [Image.fromarray(job.source.image) for job in jobs]
        extra: dict[str, Any] = {"image": sources, "control_image": controls, "strength": config.strength}
        if config.mode == "inpaint":
            extra["mask_image"] = [Image.fromarray(job.mask) for job in jobs]
        result = pipe(**extra, **common)
    images = np.asarray(result.images)
    return [np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8) for image in images]


class ControlNetBackend:
    """Generates each batch of jobs with the pipeline and judges every image (``produce``)."""

    reframe = True  # the source is warped into the generation frame

    def __init__(self, config: AugmentConfig, judge: FaceJudge, device: Any, pipeline: Any = None) -> None:
        self.config = config
        self.judge = judge
        self.condition = config.condition
        self.pipeline = pipeline if pipeline is not None else load_pipeline(config, device)

    def refuse(self, job: Job) -> str | None:
        """Every pose is attempted: the ControlNet draws whatever the conditioning shows."""
        return None

    def produce(self, jobs: list[Job]) -> list[Outcome]:
        images = generate(self.pipeline, jobs, self.config)
        return [Outcome(job, image, self.judge.assess(image, job), {}) for job, image in zip(jobs, images, strict=True)]
