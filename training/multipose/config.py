"""Options of the multi-pose augmentation (one dataclass: CLI flags, YAML files and tests all fill it).

Two backends make the images: ``mesh`` (the default) turns the source photo's own head in 3-D with the
package's renderer (:class:`ganime_age.engine.turning.TurnableHead`), on a CPU, no weights needed;
``controlnet`` generates with Stable Diffusion 1.5 + a ControlNet where those weights exist.
"""

from __future__ import annotations

from dataclasses import dataclass

# The public SD1.5 weights: runwayml/stable-diffusion-v1-5 was withdrawn from the Hub in 2024; this is the
# maintained copy with the same files. Any SD1.5-architecture id or local folder works.
DEFAULT_BASE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_CONTROLNET = "CrucibleAI/ControlNetMediaPipeFace"
OPENPOSE_CONTROLNET = "lllyasviel/control_v11p_sd15_openpose"
# ControlNetMediaPipeFace keeps its SD2.1 weights at the repo root and the SD1.5 ones in this subfolder.
KNOWN_SUBFOLDERS = {DEFAULT_CONTROLNET: "diffusion_sd15"}

# (yaw, pitch) degrees of the ControlNet backend: ±15°, ±30° yaw and ±15° pitch, as in the issue.
DEFAULT_POSES: tuple[tuple[float, float], ...] = (
    (-30.0, 0.0),
    (-15.0, 0.0),
    (15.0, 0.0),
    (30.0, 0.0),
    (0.0, -15.0),
    (0.0, 15.0),
)

# (yaw, pitch) degrees of the mesh backend: the 15-45° yaws both ways (where real turned faces are scarce) and
# ±15° pitch.
MESH_POSES: tuple[tuple[float, float], ...] = (
    (-45.0, 0.0),
    (-30.0, 0.0),
    (-15.0, 0.0),
    (15.0, 0.0),
    (30.0, 0.0),
    (45.0, 0.0),
    (0.0, -15.0),
    (0.0, 15.0),
)

DEFAULT_PROMPT = (
    "a high quality close-up portrait photo of the face of a {age} year old person, {pose}, natural skin texture, "
    "soft light, sharp focus"
)
DEFAULT_NEGATIVE_PROMPT = (
    "cartoon, anime, painting, illustration, drawing, 3d render, blurry, deformed, disfigured, extra eyes, "
    "bad anatomy, low quality, watermark, text, multiple people"
)

BACKENDS = ("mesh", "controlnet")
AGE_LABELS = ("estimator", "source")
SPLITS = ("train", "test", "all")
SOURCES = ("auto", "prepared", "folder", "utkface", "cacd", "ffhq-aging", "csv")
MODES = ("txt2img", "img2img", "inpaint")
POSE_MODES = ("absolute", "relative")
CONDITIONS = ("auto", "mediapipe_face", "openpose_face")


@dataclass
class AugmentConfig:
    """Everything one augmentation run needs; every field has a CLI flag of the same name (dashes)."""

    input: str = ""  # prepared dataset folder, or a folder of photos
    output: str = ""  # output folder (created; rerunning resumes)
    backend: str = "mesh"  # mesh: turn the photo's own head in 3-D; controlnet: Stable Diffusion + ControlNet
    source: str = "auto"  # auto: "prepared" if input/data/*.parquet exists, else a photo folder (see SOURCES)
    labels: str | None = None  # label CSV for the csv / ffhq-aging sources
    # split of a prepared dataset, or prepare_data's split of a photo folder (its content hash, the person for
    # CFEE): "train" keeps held-out test faces out of the augmentation; "all" takes every photo
    split: str = "train"
    max_sources: int | None = None  # use only N source faces, spread evenly over the sorted listing

    # poses
    poses: tuple[tuple[float, float], ...] | None = None  # (yaw, pitch) degrees; None: the backend's defaults
    pose_mode: str = "absolute"  # absolute: the face ends at (yaw, pitch); relative: source pose + (yaw, pitch)
    # controlnet: face size in the generated frame relative to the aligned-crop framing (<1: more context); the
    # mesh backend turns the photo in its own frame and size
    face_scale: float = 0.75

    # models (base_model, controlnet, condition, revision: the controlnet backend's)
    base_model: str = DEFAULT_BASE_MODEL
    controlnet: str = DEFAULT_CONTROLNET
    controlnet_subfolder: str | None = "auto"  # auto: the known subfolder of the controlnet id (diffusion_sd15)
    condition: str = "auto"  # the drawing the ControlNet expects; auto: openpose_face for OpenPose ControlNets
    revision: str | None = None
    # relabel kept outputs with this AgeEstimator's estimate: "embedded" (the shipped one), a folder or Hub
    # id, or "none" (keep the source's label, recorded as age_label_source "source")
    estimator: str | None = "embedded"
    # the label of a kept output: "estimator" (the estimator's reading, when one is loaded) or "source" (the
    # source's label, the estimator's reading still recorded as age_estimated): a turn does not change an age
    age_label: str = "estimator"
    recognizer: str | None = None  # MobileFaceNet weights (default: the resolved asset)

    # generation (the controlnet backend's, but for seed and batch_size)
    mode: str = "txt2img"  # txt2img | img2img | inpaint (the latter two keep the source's identity/background)
    strength: float = 0.8  # img2img / inpaint denoising strength
    resolution: int = 512
    steps: int = 30
    guidance_scale: float = 7.5
    controlnet_scale: float = 1.0
    prompt: str = DEFAULT_PROMPT  # placeholders: {age} {group} {pose} {yaw} {pitch}
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    seed: int = 0
    batch_size: int = 4
    dtype: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU) | float16 | bfloat16 | float32
    channels_last: bool = False
    compile: bool = False

    # the mesh backend
    # an output whose measured pose misses the request by more than half the tolerance is turned again this
    # many times, aimed past the request by what the last attempt fell short (the closest attempt is judged)
    aim_corrections: int = 1
    max_turn: float = 60.0  # degrees: a pose further than this from the source's is not attempted

    # filtering
    pose_tolerance: float = 10.0  # max |measured - requested| of yaw and of pitch, degrees
    identity_threshold: float = 0.35  # min MobileFaceNet cosine between source and output
    keep_rejected: bool = False  # also save rejected images (under rejected/) for inspection
    save_conditioning: bool = False  # save the conditioning drawings (under conditioning/)

    # output
    image_format: str = "png"
    push_to_hub: str | None = None  # Hub dataset repo id
    private: bool = False
    progress: bool = True


def parse_pose(text: str) -> tuple[float, float]:
    """'yaw:pitch' (or 'yaw,pitch') degrees -> (yaw, pitch)."""
    parts = text.replace(",", ":").split(":")
    if len(parts) != 2:
        raise ValueError(f"a pose is 'yaw:pitch' in degrees, e.g. 30:0 or -15:10; got {text!r}")
    try:
        yaw, pitch = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"a pose is 'yaw:pitch' in degrees, e.g. 30:0; got {text!r}") from None
    if not (-90.0 < yaw < 90.0 and -90.0 < pitch < 90.0):
        raise ValueError(f"pose angles must lie in (-90, 90) degrees; got {text!r}")
    return yaw, pitch


def pose_tag(yaw: float, pitch: float) -> str:
    """A file-name-safe tag of a requested pose, e.g. 'y+30_p-15'."""
    return f"y{yaw:+g}_p{pitch:+g}"


def default_poses(backend: str) -> tuple[tuple[float, float], ...]:
    """The poses a backend asks for when --poses is not given."""
    return MESH_POSES if backend == "mesh" else DEFAULT_POSES


def default_subfolder(controlnet: str) -> str | None:
    return KNOWN_SUBFOLDERS.get(controlnet.rstrip("/"))


def default_condition(controlnet: str) -> str:
    return "openpose_face" if "openpose" in controlnet.lower() else "mediapipe_face"
