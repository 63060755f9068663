"""One way to save and load every model: ``PyTorchModelHubMixin`` + safetensors + strict loading.

Each model class subclasses :class:`HubModel`, declares ``model_type`` and ``config_class`` (a
dataclass from :mod:`ganime_age.config`) and takes that config as its single constructor argument.
``config.json`` is the dataclass, ``model.safetensors`` the weights, ``README.md`` the card
rendered from ``model_card/``. :func:`load_pretrained` reads ``config.json`` and picks the class.

Loading refuses what cannot be right, with a typed error naming the key or tensor: config values of
the wrong type or out of their declared range (each field declares it, :func:`ganime_age.config.bounded`;
a dataclass's ``validate()`` adds the rules across fields), a
``model.safetensors`` or config that does not match the sha256 sums ``save_pretrained`` writes into
``config.json``, and tensors that are NaN/Inf, of a non-float dtype, or all zero where a fresh model
is not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import math
import os
import re
import stat
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin, hf_hub_download
from torch import nn

from ganime_age import __version__
from ganime_age.config import check_config, from_dict, to_dict
from ganime_age.errors import ConfigError, CorruptWeightsError, NewerVersionError, WeightsError, echo

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
WEIGHTS_SHA256 = "weights_sha256"  # config.json key: sha256 of model.safetensors
CONFIG_SHA256 = "config_sha256"  # config.json key: sha256 of the model's own settings (config_digest)
BOOKKEEPING_KEYS = ("model_type", "ganime_age_version", WEIGHTS_SHA256, CONFIG_SHA256)  # not constructor arguments
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_PARAMETERS = 500_000_000
"""Largest model a config may describe (2 GB of fp32; the shipped generator has 2.2 M, the largest training
critic 45 M). Counted on the ``meta`` device, before a byte is allocated: a config within every range of
``validate()`` (conv_dim 1024, 64 residual blocks) can otherwise ask for tens of GB."""
MAX_CONFIG_BYTES = 1_000_000
"""config.json is a few hundred bytes; a larger one is not a ganime-age config (and is not read whole)."""
MAX_HEADER_BYTES = 16_000_000
"""A safetensors header (JSON: name, dtype, shape and offsets of each tensor) above this is refused unread."""
SAFETENSORS_DTYPES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
SAFETENSORS_DTYPES |= {"U64": 8, "U32": 4, "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1}  # dtype -> bytes per value
REPO_URL = "https://github.com/ganime-age/ganime-age"

# model_type -> "module:Class"; imported lazily so that loading one model never imports the others.
MODEL_REGISTRY: dict[str, str] = {
    "fitted_engine": "ganime_age.engine:FittedEngine",
    "ganime_age": "ganime_age.models.ganimation_age:GanimationAge",
    "ganime_age_discriminator": "ganime_age.models.ganimation_age:GanimationAgeDiscriminator",
    "age_estimator": "ganime_age.models.age_estimator:AgeEstimator",
    "cydral_age_estimator": "ganime_age.models.cydral_age:CydralAgeEstimator",
    "cydral_sex_classifier": "ganime_age.models.cydral_sex:CydralSexClassifier",
    "aifd_encoder": "ganime_age.models.aifd:AIFDEncoder",
    "agetransgan": "ganime_age.models.agetransgan:AgeTransGAN",
    "agetransgan_discriminator": "ganime_age.models.agetransgan:AgeTransGANDiscriminator",
    "ragan": "ganime_age.models.ragan:ReAgingGAN",
    "ragan_discriminator": "ganime_age.models.ragan:ReAgingDiscriminator",
    "reenactor": "ganime_age.models.reenact:Reenactor",
    "reenact_discriminator": "ganime_age.models.reenact:ReenactDiscriminator",
    "mobilefacenet": "ganime_age.models.mobilefacenet:MobileFaceNet",
    "age_exemplars": "ganime_age.engine.exemplars:AgeExemplars",
}

# What a model is for in an editor: the parts an editor manifest (editor.json) names, and the networks that only
# train or judge the others or that a part reads faces with (the sex classifier). Each HubModel class declares
# its own (``role``), so no list of model types is kept.
EDITOR_ROLES = ("engine", "exemplars", "refiner", "age_estimator", "sex_classifier", "reenactor")
OTHER_ROLES = ("critic", "encoder", "recogniser")

M = TypeVar("M", bound="HubModel")


class HubModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="ganime-age",
    pipeline_tag="image-to-image",
    repo_url=REPO_URL,
    tags=["ganime-age", "face-editing", "face-aging"],
):
    """Base class of every ganime-age network: a dataclass config, safetensors weights, strict loads."""

    model_type: ClassVar[str] = ""
    role: ClassVar[str] = ""  # one of EDITOR_ROLES or OTHER_ROLES
    config_class: ClassVar[type] = object
    description: ClassVar[str] = ""
    card_pipeline_tag: ClassVar[str] = "image-to-image"  # estimators and encoders override it

    def __init__(self, config: Any = None) -> None:
        super().__init__()
        if config is None:
            config = self.config_class()
        elif isinstance(config, dict):
            settings = {k: v for k, v in config.items() if k not in BOOKKEEPING_KEYS}
            try:
                config = from_dict(self.config_class, settings)
            except (ValueError, TypeError) as error:
                raise ConfigError(f"{type(self).__name__} config: {error}") from None
        elif not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}")
        validate_config(config)
        self.config = config
        self._hub_mixin_config = self.hub_config()

    def hub_config(self) -> dict[str, Any]:
        """What goes into config.json: the dataclass plus the registry key and the package version."""
        return {"model_type": self.model_type, "ganime_age_version": __version__, **to_dict(self.config)}

    # -- saving ---------------------------------------------------------------------------------
    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | Path,
        *,
        dtype: torch.dtype | None = None,
        model_card_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Write config.json, model.safetensors (optionally cast, e.g. fp16) and a README.md card."""
        self._save_dtype = dtype
        # The Hub mixin keeps an existing README.md; a re-export must not ship the previous model's card.
        (Path(save_directory) / "README.md").unlink(missing_ok=True)
        kwargs.pop("config", None)  # config.json is always the model's own dataclass (push_to_hub passes it back)
        try:
            self._hub_mixin_config = self.hub_config()
            return super().save_pretrained(
                save_directory, config=self._hub_mixin_config, model_card_kwargs=model_card_kwargs, **kwargs
            )
        finally:
            self._save_dtype = None

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_file

        dtype = getattr(self, "_save_dtype", None)
        state = {}
        for name, tensor in self.state_dict().items():
            tensor = tensor.detach().to("cpu")
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            state[name] = tensor.contiguous().clone()
        weights = Path(save_directory) / WEIGHTS_NAME
        save_file(state, str(weights), metadata={"format": "pt", "model_type": self.model_type})
        # Written here, before the Hub mixin would write it without them: the sums that loading verifies.
        stamped = {**self._hub_mixin_config, **checksums(weights, self._hub_mixin_config)}
        (Path(save_directory) / CONFIG_NAME).write_text(json.dumps(stamped, sort_keys=True, indent=2))

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """Render the card from ``model_card/<model_type>.md`` (or ``default.md``) with the config inside."""
        info = self._hub_mixin_info
        license_id = kwargs.pop("license", None) or "apache-2.0"
        card_data = ModelCardData(
            library_name="ganime-age",
            license=license_id,
            license_name=kwargs.pop("license_name", None),
            license_link=kwargs.pop("license_link", None),
            pipeline_tag=kwargs.pop("pipeline_tag", None) or self.card_pipeline_tag,
            tags=sorted(set((info.model_card_data.tags or []) + list(kwargs.pop("tags", [])))),
            datasets=kwargs.pop("datasets", None),
        )
        description = self.description or (type(self).__doc__ or "").strip().splitlines()[0]
        note = kwargs.pop("note", None)  # what this particular checkpoint is (e.g. a preview), under the description
        values = {
            "model_name": kwargs.pop("model_name", type(self).__name__),
            "model_type": self.model_type,
            "class_name": type(self).__name__,
            "description": f"{description}\n\n{note}" if note else description,
            "config_json": json.dumps(to_dict(self.config), indent=2, sort_keys=True),
            "num_parameters": sum(p.numel() for p in self.parameters()),
            "trained_on": kwargs.pop("trained_on", "nothing yet: these are freshly initialised weights"),
            "training": kwargs.pop("training", None),
            "evaluation": kwargs.pop("evaluation", None),
            "samples": kwargs.pop("samples", None),
            "license_note": kwargs.pop("license_note", None),
            "repo_url": REPO_URL,
            "version": __version__,
            **kwargs,
        }
        return ModelCard.from_template(card_data=card_data, template_str=read_card_template(self.model_type), **values)

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls: type[M],
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ) -> M:
        """The Hub mixin's loader, with config.json read by :func:`read_config` first: a bounded, typed read
        (the mixin's own ``json.load`` raised UnicodeDecodeError or RecursionError on a damaged file)."""
        hub = {
            "force_download": force_download,
            "token": token,
            "cache_dir": cache_dir,
            "local_files_only": local_files_only,
            "revision": revision,
        }
        if "config" not in model_kwargs:
            model_kwargs["config"] = read_config(str(pretrained_model_name_or_path), **hub)
        return super().from_pretrained(pretrained_model_name_or_path, **hub, **model_kwargs)

    @classmethod
    def _from_pretrained(  # type: ignore[override]
        cls: type[M],
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs: Any,
    ) -> M:
        config = model_kwargs.pop("config", None)
        if isinstance(config, dict):
            declared = config.get("model_type")
            if declared and declared != cls.model_type:
                raise WeightsError(f"{model_id} holds a {declared!r} model, not {cls.model_type!r} ({cls.__name__})")
        # The model is first built on the meta device (shapes, no memory): its size is bounded and the weights
        # file's header is compared with its tensors before anything is allocated.
        try:
            with torch.device("meta"):
                skeleton = cls(config, **model_kwargs)
        except (ValueError, TypeError) as error:  # ConfigError, or a value the architecture cannot build with
            raise WeightsError(f"{model_id}: {CONFIG_NAME} is not usable: {error}") from None
        check_model_size(skeleton, model_id)
        weights = _resolve_file(
            model_id,
            WEIGHTS_NAME,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
        )
        header = read_safetensors_header(weights)
        compare_header(header, skeleton.state_dict(), weights, type(skeleton).__name__, strict=strict)
        del skeleton
        try:
            model = cls(config, **model_kwargs)
        except (ValueError, TypeError) as error:
            raise WeightsError(f"{model_id}: {CONFIG_NAME} is not usable: {error}") from None
        load_weights(model, weights, strict=strict)
        # after the tensor checks, whose messages (missing, misshapen, NaN) say more; the sums catch the rest
        stamped = config if isinstance(config, dict) else {}
        verify_weights_checksum(stamped, weights, model_id)
        verify_config_checksum(stamped, model_id)
        model.to(map_location)
        model.eval()
        return model


def validate_config(config: Any) -> None:
    """Every field against its declaration (type, finite, range or choices: :func:`ganime_age.config.check_config`),
    nested configs included, before anything is sized from it; then each dataclass's own ``validate()``, which
    holds the rules across fields (increasing ages, one size a multiple of another)."""
    if dataclasses.is_dataclass(config):
        check_config(config)
    _validate_across_fields(config)


def _validate_across_fields(config: Any) -> None:
    if dataclasses.is_dataclass(config):
        for item in dataclasses.fields(config):
            value = getattr(config, item.name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                _validate_across_fields(value)
    check = getattr(config, "validate", None)
    if callable(check):
        check()


def config_digest(settings: dict[str, Any]) -> str:
    """sha256 of a model's settings as canonical JSON (sorted keys): what ties config.json to its weights.

    Taken over the settings config.json holds (not the dataclass), so a field added to a config class
    later, with a default, does not invalidate folders exported before it existed.
    """
    own = {k: v for k, v in settings.items() if k not in BOOKKEEPING_KEYS}
    return hashlib.sha256(json.dumps(own, sort_keys=True).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def checksums(weights: str | Path, settings: dict[str, Any]) -> dict[str, str]:
    """The config.json entries that let loading detect damaged weights and edited settings."""
    return {WEIGHTS_SHA256: file_sha256(weights), CONFIG_SHA256: config_digest(settings)}


def verify_weights_checksum(stamped: dict[str, Any], weights: str | Path, model_id: str) -> None:
    """Compare model.safetensors with the sum in config.json, where present (older folders have none)."""
    expected = stamped.get(WEIGHTS_SHA256)
    if expected is not None and file_sha256(weights) != expected:
        raise CorruptWeightsError(
            f"{model_id}: {WEIGHTS_NAME} does not match the {WEIGHTS_SHA256} in {CONFIG_NAME}; "
            "the file is damaged or was replaced (download or export it again)"
        )


def verify_config_checksum(stamped: dict[str, Any], model_id: str) -> None:
    """Compare config.json's settings with the sum written at export, where present."""
    expected = stamped.get(CONFIG_SHA256)
    if expected is not None and config_digest(stamped) != expected:
        raise CorruptWeightsError(
            f"{model_id}: the settings in {CONFIG_NAME} were changed after export ({CONFIG_SHA256} differs); "
            "they must match the weights they were trained with"
        )


def stamp_checksums(folder: str | Path) -> dict[str, str]:
    """Add the sums to an existing model folder's config.json (folders exported before they existed);
    the folder must load cleanly first. Returns the sums written."""
    folder = Path(folder)
    load_pretrained(folder)
    settings = read_config(folder)
    sums = checksums(folder / WEIGHTS_NAME, settings)
    stamped = {**settings, **sums}
    (folder / CONFIG_NAME).write_text(json.dumps(stamped, sort_keys=True, indent=2))
    return sums


def check_model_source(model_id: str, what: str = "the model folder or Hub id") -> None:
    """Refuse a folder or Hub id that no file system or Hub can hold: one with a NUL byte (``os`` raises an untyped
    ``ValueError: embedded null byte`` on it, and the Hub client's message repeated the byte raw)."""
    if "\x00" in model_id:
        raise WeightsError(f"{what} {echo(model_id)} holds a NUL byte, which no folder name or Hub id can hold")


def _resolve_file(model_id: str, filename: str, **hub_kwargs: Any) -> str:
    check_model_source(model_id)
    if os.path.isdir(model_id):
        path = os.path.join(model_id, filename)
        if os.path.lexists(path) and not os.path.isfile(path):
            what = (
                "a folder"
                if os.path.isdir(path)
                else "not a regular file (a device, a pipe, a socket or a broken link)"
            )
            raise WeightsError(f"{filename} in {Path(model_id).resolve()} is {what}; it must be the file itself")
        if not os.path.isfile(path):
            raise WeightsError(f"{filename} not found in {Path(model_id).resolve()}")
        return path
    if os.path.exists(model_id):
        raise WeightsError(f"{model_id} is a file; pass the folder that holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    if _looks_like_a_path(model_id):
        raise WeightsError(f"no model folder at {model_id} (and it is not a Hugging Face Hub id such as 'owner/name')")
    try:
        return hf_hub_download(repo_id=model_id, filename=filename, **hub_kwargs)
    except Exception as error:  # network down, repo missing, auth: all mean "cannot get the file"
        raise WeightsError(  # the id and the Hub's own text cut short: a 5000-character id was repeated twice whole
            f"could not get {filename} of {echo(model_id)} from the Hugging Face Hub (offline, or no such model?): "
            f"{_short(error)}"
        ) from error


def _looks_like_a_path(model_id: str) -> bool:
    """A local path rather than a Hub id 'owner/name': absolute, relative with dots, ~, or a backslash."""
    return (
        os.path.isabs(model_id)
        or model_id.startswith(("./", "../", "~", "."))
        or "\\" in model_id
        or model_id.count("/") > 1
    )


def check_tensors(state: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse weights that load but cannot be a trained model: non-finite values, a dtype cast (int32 where
    floats belong), or a weight matrix that is all zero where a freshly initialised model's is not (biases and
    zero-initialised heads are legitimately zero, so only tensors of 2+ dims that start non-zero are checked)."""
    for name, tensor in state.items():
        reference = fresh.get(name)
        if reference is None:
            continue
        if reference.is_floating_point() and tensor.dtype not in FLOAT_DTYPES:
            raise CorruptWeightsError(
                f"{path}: tensor {name} is {tensor.dtype}; a float (fp32/fp16/bf16) belongs there"
            )
        if not reference.is_floating_point() and tensor.is_floating_point():
            raise CorruptWeightsError(f"{path}: tensor {name} is {tensor.dtype}; an integer tensor belongs there")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CorruptWeightsError(f"{path}: tensor {name} holds NaN or infinite values; the weights are corrupt")
        if tensor.ndim >= 2 and tensor.numel() and not bool(tensor.any()) and bool(reference.any()):
            raise CorruptWeightsError(f"{path}: tensor {name} is all zeros; the weights are corrupt or untrained")


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = True) -> None:
    """Load a safetensors file into `model`; with `strict`, any missing, unexpected or misshapen tensor is an error.

    Corrupt values are refused whatever `strict` says (:func:`check_tensors`).
    """
    from safetensors import SafetensorError, safe_open

    expected = model.state_dict()
    header = read_safetensors_header(path)  # names and shapes compared before any tensor is read
    keys = compare_header(header, expected, path, type(model).__name__, strict=strict)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            usable = {k: handle.get_tensor(k) for k in keys}  # only the tensors the model has, in its shapes
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsError(f"{path} is not a readable safetensors file: {error}") from error
    check_tensors(usable, expected, path)
    # load_state_dict copies into the existing (fp32) tensors, so fp16 checkpoints are upcast here.
    model.load_state_dict(usable, strict=False)


def check_model_size(model: nn.Module, model_id: str) -> int:
    """The number of values (parameters and buffers) of a model built from its config; over MAX_PARAMETERS is
    refused. Meant for a model on the meta device, so counting costs no memory."""
    count = sum(t.numel() for t in model.state_dict().values())
    if count > MAX_PARAMETERS:
        raise WeightsError(
            f"{model_id}: {CONFIG_NAME} describes a {type(model).__name__} of {count / 1e6:,.0f} M parameters "
            f"(about {count * 4 / 1e9:,.1f} GB); the limit is {MAX_PARAMETERS / 1e6:,.0f} M"
        )
    return count


def read_safetensors_header(path: str | Path) -> dict[str, dict[str, Any]]:
    """The tensor table of a safetensors file ({name: {"dtype", "shape", "data_offsets"}}), read without the data.

    Layout: an 8-byte little-endian header length, then that many bytes of JSON. Only a regular file is
    opened; a header that is too long, not JSON, or whose offsets leave the file is a WeightsError.
    """
    shown = str(path)
    try:
        with _open_regular(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise WeightsError(f"{shown} is not a safetensors file: it is only {size} bytes long")
            length = int.from_bytes(prefix, "little")
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise WeightsError(
                    f"{shown} is not a safetensors file: its header claims {length:,} bytes "
                    f"(the file has {size:,}; the limit is {MAX_HEADER_BYTES:,})"
                )
            raw = handle.read(length)
    except OSError as error:
        raise WeightsError(f"cannot read {shown}: {error.strerror or type(error).__name__}") from None
    try:
        table = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WeightsError(f"{shown} is not a safetensors file: its header is not JSON ({_short(error)})") from None
    if not isinstance(table, dict):
        raise WeightsError(f"{shown} is not a safetensors file: its header is not a JSON object")
    data_size = size - 8 - length
    tensors = {}
    for name, entry in table.items():
        if name == "__metadata__":
            continue
        if not _valid_entry(entry, data_size):
            raise WeightsError(f"{shown} is not a valid safetensors file: the entry of tensor {name[:80]!r} is broken")
        tensors[name] = entry
    return tensors


def _valid_entry(entry: Any, data_size: int) -> bool:
    """A header entry with a known dtype, a shape of non-negative ints, and offsets inside the data that hold
    exactly that many values (a shape claiming 10 GB in a 3 MB file is refused here)."""
    if not isinstance(entry, dict) or entry.get("dtype") not in SAFETENSORS_DTYPES:
        return False
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        return False
    if not isinstance(offsets, list) or len(offsets) != 2:
        return False
    start, end = offsets
    if not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets) or not 0 <= start <= end <= data_size:
        return False
    return end - start == math.prod(shape) * SAFETENSORS_DTYPES[entry["dtype"]]


def compare_header(
    header: dict[str, dict[str, Any]],
    expected: dict[str, torch.Tensor],
    path: str | Path,
    model_name: str,
    *,
    strict: bool = True,
) -> list[str]:
    """Compare a weights file's tensor table with a model's state_dict (names and shapes); with `strict`, any
    missing, unexpected or misshapen tensor is a WeightsError. Returns the names that can be loaded."""
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    shapes = {k: tuple(header[k]["shape"]) for k in header}
    misshapen = sorted(k for k in set(header) & set(expected) if shapes[k] != tuple(expected[k].shape))
    if strict and (missing or unexpected or misshapen):
        parts = []
        if missing:
            parts.append(f"missing {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected {_names(unexpected)}")
        if misshapen:
            parts.append("wrong shape " + _names([f"{k} {shapes[k]}≠{tuple(expected[k].shape)}" for k in misshapen]))
        raise WeightsError(f"{path} does not match {model_name}: " + "; ".join(parts))
    return sorted(k for k in header if k in expected and k not in misshapen)


@contextlib.contextmanager
def _open_regular(path: str | Path, mode: str = "rb") -> Iterator[Any]:
    """Open a file only if it is a regular one (checked before opening, and again on the descriptor): a FIFO
    or a device in a model folder would block or never end."""
    shown = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise WeightsError(f"{shown} not found") from None
    if not stat.S_ISREG(info.st_mode):
        raise WeightsError(f"{shown} is not a regular file (a folder, a device, a pipe or a socket)")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, mode) as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise WeightsError(f"{shown} is not a regular file")
        yield handle


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _names(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def read_config(model_id: str | Path, **hub_kwargs: Any) -> dict[str, Any]:
    """config.json as a dict: a regular file of at most MAX_CONFIG_BYTES, UTF-8, one JSON object; anything else
    (a 0xff byte, JSON nested 100,000 deep, a FIFO) is a WeightsError, never UnicodeDecodeError or RecursionError."""
    path = _resolve_file(str(model_id), CONFIG_NAME, **hub_kwargs)
    try:
        with _open_regular(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise WeightsError(f"{path} is not a readable config.json: {error.strerror or error}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise WeightsError(f"{path} is larger than {MAX_CONFIG_BYTES:,} bytes; it is not a ganime-age config.json")
    try:
        config = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise WeightsError(f"{path} is not a readable config.json: not UTF-8 text ({_short(error)})") from None
    except RecursionError:
        raise WeightsError(f"{path} is not a readable config.json: its JSON is nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, or an integer literal of thousands of digits
        raise WeightsError(f"{path} is not a readable config.json: {_short(error)}") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{path} must hold a JSON object")
    check_written_version(config.get("ganime_age_version"), f"{model_id}: {CONFIG_NAME}")
    return config


def major_version(version: str) -> int | None:
    """The major number of a version such as "1.2.0" (or "1.2.0rc1", "2"); None where it does not start with one."""
    found = re.match(r"\s*v?(\d{1,9})(?!\d)", version)
    return int(found.group(1)) if found else None


def check_written_version(version: object, what: str) -> None:
    """Refuse what a newer major version of ganime-age wrote (an editor's ``editor.json``, a model's
    ``config.json``: its format may have changed in ways this version would misread); a missing version (a folder
    written before versions were recorded) and older ones load."""
    if version is None:
        return
    major = major_version(version) if isinstance(version, str) else None
    if major is None:
        raise WeightsError(f"{what}: ganime_age_version must be a version such as '0.1.0', not {echo(version)}")
    running = major_version(__version__) or 0
    if major > running:
        shown = version.strip()[:20]
        shown = shown if shown.isprintable() else echo(shown)  # "7\n\x00...": escaped, never written raw
        raise NewerVersionError(
            f"{what} was written by ganime-age {shown}, a newer major version than this one "
            f"({__version__}); upgrade ganime-age (pip install -U ganime-age) to load it"
        )


def model_class(model_type: str) -> type[HubModel]:
    try:
        target = MODEL_REGISTRY[model_type]
    except KeyError:
        raise WeightsError(f"unknown model_type {model_type!r}; known: {', '.join(sorted(MODEL_REGISTRY))}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_pretrained(
    model_id: str | Path, *, map_location: str = "cpu", role: str | None = None, **hub_kwargs: Any
) -> HubModel:
    """Load any ganime-age model from a Hub id or folder, picking the class from config.json; with `role`, a
    model of another role (an age estimator given as the engine) is refused before its weights are read."""
    cls = model_class_of(model_id, **hub_kwargs)
    if role is not None and cls.role != role:
        raise WeightsError(f"{model_id} holds a {cls.__name__} ({cls.role or 'no role'}), not the {role} asked for")
    return cls.from_pretrained(
        str(model_id), map_location=map_location, config=read_config(str(model_id), **hub_kwargs), **hub_kwargs
    )


def model_class_of(model_id: str | Path, **hub_kwargs: Any) -> type[HubModel]:
    """The class a folder or Hub id holds, from its config.json's model_type (no weights read)."""
    config = read_config(str(model_id), **hub_kwargs)
    model_type = config.get("model_type")
    if not model_type or not isinstance(model_type, str):
        raise WeightsError(f"{model_id}: config.json has no model_type; is this a ganime-age model?")
    return model_class(model_type)


def read_card_template(model_type: str) -> str:
    """The card template for a model type, from the installed package or the source checkout."""
    for folder in _card_folders():
        for name in (f"{model_type}.md", "default.md"):
            candidate = folder / name
            if candidate.is_file():
                return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError("model_card/default.md is missing from this installation")


def _card_folders() -> list[Any]:
    folders: list[Any] = []
    with contextlib.suppress(ModuleNotFoundError, TypeError):
        folders.append(resources.files("ganime_age") / "model_card")
    folders.append(Path(__file__).resolve().parents[2] / "model_card")
    return folders
