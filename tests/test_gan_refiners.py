"""AgeTransGAN (with and without its MI loss) and RAGAN as refiners of the fitted engine (issue 32): a fresh
refiner passes the engine's edit through, two steps of each tiny config train on real refiner data (the
engine's edits of CFEE and UTKFace photos, built here) with finite losses, and the export is a refiner."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import build_refiner_pairs

from ganime_age.hub import load_pretrained
from ganime_age.models.agetransgan import AgeTransGAN
from ganime_age.models.aifd import AIFDEncoder
from ganime_age.models.ragan import ReAgingGAN
from training.data.prepared import RefinerPairs
from training.systems.trackers import read_log
from training.train import load_run_config, main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "training" / "configs"
TINY = {"agetransgan": CONFIGS / "agetransgan_refiner_tiny.yaml", "ragan": CONFIGS / "ragan_refiner_tiny.yaml"}
SHARED_TERMS = {"g_target", "g_change", "g_chroma", "g_checkerboard", "g_age_hold", "g_age_reading", "g_identity"}
ADVERSARIAL_TERMS = {"d_loss", "g_loss", "g_adv", "g_reconstruction"}
OWN_TERMS = {"agetransgan": {"d_real", "d_fake", "d_age", "g_age"}, "ragan": {"d_adv", "d_cls_real", "g_cls"}}


@pytest.fixture(scope="module")
def refiner_data(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """Two CFEE training people (both directions of every pair) and four UTKFace age edits, at 128 px."""
    return build_refiner_pairs(tmp_path_factory.mktemp("gan_refiner_data") / "data", people=2, photos=4)


@pytest.fixture(scope="module")
def aifd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded AIFD encoder in the Hub layout: the frozen E_A of the MI loss (untrained: the tests only
    need its embedding to differ between faces)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = AIFDEncoder({"image_size": 32, "base_channels": 8, "channel_multipliers": [1, 2, 4]})
    folder = tmp_path_factory.mktemp("aifd") / "aifd"
    encoder.save_pretrained(folder)
    return folder


def edits(data: Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine's edits of every row (real faces, saturated pixels included) and their target ages."""
    pairs = RefinerPairs(data, "train", test_fraction=0.0, image_size=size)
    rows = [pairs[i] for i in range(len(pairs))]
    images = torch.stack([row["image"] for row in rows])
    images[0, :, :6, :6] = 1.0  # a blown-out highlight, as photos have
    return images, torch.stack([row["age"] for row in rows]).float()


@pytest.mark.parametrize("kind", ["agetransgan", "ragan"])
def test_a_fresh_refiner_returns_its_input(refiner_data: Path, kind: str) -> None:
    """The untrained refiner of each kind, at the CPU config's size and the tiny one's, equals the engine."""
    images, ages = edits(refiner_data, 128)
    cpu = load_run_config(str(CONFIGS / f"{kind}_refiner_cpu.yaml"), []).system.generator
    tiny = load_run_config(str(TINY[kind]), []).system.generator
    for config in (cpu, tiny):
        torch.manual_seed(0)
        model = (AgeTransGAN(config) if kind == "agetransgan" else ReAgingGAN(config)).eval()
        batch = torch.nn.functional.interpolate(images, size=config.image_size, mode="area")
        with torch.no_grad():
            out = model.edit_faces(batch, source_age=ages, target_age=ages, source_aus=None, target_aus=None).image
        assert out.shape == batch.shape
        assert (out - batch).abs().max() < 1e-4
    assert (images.amax(dim=(1, 2, 3)) - images.amin(dim=(1, 2, 3)) > 1.0).all()  # real faces, not flat


def train_two_steps(config: Path, data: Path, output: Path, *overrides: str) -> list[dict]:
    args = [f"train.data_dir={data}", f"train.output_dir={output}", "train.max_steps=2", "train.log_every=1"]
    args += ["train.sample_every=2", "train.checkpoint_every=0", *overrides]
    assert main(["--config", str(config), *args]) == 0
    return [r for r in read_log(output) if "step" in r]


def check_run(records: list[dict], output: Path, kind: str, expected: set[str]) -> None:
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        assert set(record) >= expected, expected - set(record)
        assert all(math.isfinite(v) for v in record.values() if isinstance(v, float))
    assert records[-1]["g_change"] > 0  # the first update changed the refiner
    assert next((output / "samples").glob("step-*.png"))
    model = load_pretrained(output / "export")
    assert model.role == "refiner"
    assert isinstance(model, AgeTransGAN if kind == "agetransgan" else ReAgingGAN)
    card = (output / "export" / "README.md").read_text(encoding="utf-8")
    assert "refiner of the fitted edit engine" in card and "non-commercial" in card


def test_agetransgan_refiner_trains_with_and_without_mi(refiner_data: Path, aifd_folder: Path, tmp_path: Path) -> None:
    base = SHARED_TERMS | ADVERSARIAL_TERMS | OWN_TERMS["agetransgan"]
    mi = ["system.lambda_mi=1.0", f"system.aifd_path={aifd_folder}"]
    with_mi = train_two_steps(TINY["agetransgan"], refiner_data, tmp_path / "mi", *mi)
    check_run(with_mi, tmp_path / "mi", "agetransgan", base | {"g_mi"})
    assert all(r["g_mi"] >= 0 for r in with_mi) and max(r["g_mi"] for r in with_mi) > 0
    without = train_two_steps(TINY["agetransgan"], refiner_data, tmp_path / "plain", "system.lambda_mi=0")
    check_run(without, tmp_path / "plain", "agetransgan", base)
    assert all("g_mi" not in r for r in without)
    exported = load_pretrained(tmp_path / "mi" / "export")
    assert exported.config.refiner is True
    assert "with the MI loss" in (tmp_path / "mi" / "export" / "README.md").read_text(encoding="utf-8")


def test_the_mi_term_is_positive_where_the_output_moves_from_its_reference(
    refiner_data: Path, aifd_folder: Path
) -> None:
    """MI against the identity reference: 0 on age rows left as the engine made them, > 0 on expression rows
    (whose reference is the source photo) and where an age row's output is not the engine's edit."""
    from accelerate import Accelerator

    config = load_run_config(str(TINY["agetransgan"]), [f"train.data_dir={refiner_data}", "system.lambda_mi=1"])
    config.system.aifd_path = str(aifd_folder)
    system = config.system_cls(config.system, config.train, Accelerator(cpu=True, mixed_precision="no"))
    system.build()
    pairs = RefinerPairs(refiner_data, "train", test_fraction=0.0, image_size=64)
    batch = {key: torch.stack([pairs[i][key] for i in range(len(pairs))]) for key in pairs[0]}
    paired = batch["has_target"] > 0.5
    assert paired.any() and (~paired).any()
    with torch.no_grad():
        _, kept = system.generator_terms(batch, batch["image"])
        only_age = {key: value[~paired] for key, value in batch.items()}
        _, on_age_rows = system.generator_terms(only_age, only_age["image"])
        _, undone = system.generator_terms(only_age, only_age["source_image"])
    assert float(kept["g_mi"]) > 0 and float(undone["g_mi"]) > 0
    assert abs(float(on_age_rows["g_mi"])) < 1e-5


def test_ragan_refiner_trains_and_exports(refiner_data: Path, tmp_path: Path) -> None:
    records = train_two_steps(TINY["ragan"], refiner_data, tmp_path / "ragan")
    check_run(records, tmp_path / "ragan", "ragan", SHARED_TERMS | ADVERSARIAL_TERMS | OWN_TERMS["ragan"])
    assert load_pretrained(tmp_path / "ragan" / "export").config.output_mode == "residual"


def test_the_refiners_share_one_objective() -> None:
    """The three refiner systems compute the shared terms in one place (refiner_common), each its own beside."""
    from training.systems import system_class
    from training.systems.refiner_common import RefinerBase, RefinerObjective

    for name in ("ganimation_refiner", "agetransgan_refiner", "ragan_refiner"):
        cls = system_class(name)
        assert issubclass(cls, RefinerBase) and issubclass(cls.config_class, RefinerObjective)
        assert "refiner_terms" not in vars(cls)
    assert np.isclose(load_run_config(str(TINY["ragan"]), []).system.lambda_age_hold, 10.0)
