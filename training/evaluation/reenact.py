"""Evaluate reenactment (issue 7): ``python training/evaluate.py reenact --photos DIR [--reenactor FOLDER]``.

Two measurements on real face photos:

- **Self-reenactment**: the driver is a randomly warped copy of the photo itself (the training warp of
  ``training/systems/reenact.py``: the face moves by a random roll/scale/shift/squeeze + spline jitter,
  the background stays). Source and driver are the same person, so the ideal target landmarks are the
  driver's own (as measured by MediaPipe on the copy); the renderer (warp or generator) moves the source
  to them and should reproduce the copy: L1 (pixels on 0..1) and PSNR against it, over the whole photo
  and over the face box; "no-op" is the unchanged source. (The full pipeline's shape transfer would keep
  the source's position and scale by design, which a shifted copy does not.)
- **Cross-identity**: every photo is driven by another one. Measured on the output with the same
  YuNet + MediaPipe pipeline users get: head-pose error to the driver (yaw, pitch, roll, degrees), AU
  error to the driver (mean absolute over the 17 AUs, 0..5), and identity kept (MobileFaceNet cosine of
  the output to the source, and the share above the threshold at 1% false accepts on pairs of
  different source photos). The "no-op" rows show the same measures for the unchanged source.

Methods: ``warp`` (the classical landmark warp, no training), or a Reenactor folder; ``--reenactor
untrained`` runs a freshly initialised 128 px Reenactor, i.e. its landmark thin-plate-spline prior plus
an untrained decoder (an ablation, not a result).

The self-reenactment rows measure the landmark renderers (``Reenactment.pose``: the 2-D warp, or a trained
Reenactor) that a learned reenactor is compared with; the default reenactment (the engine's expression, then
the head turned in 3-D) is what the cross-identity rows run, and ``evaluate.py turning``
(:mod:`training.evaluation.turning`) measures it against issue 31's gates.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganime_age.conditions import NUM_AUS
from ganime_age.errors import GanimeAgeError, NoFaceError
from training.evaluation.metrics import (
    accept_rate,
    add_report_arguments,
    embed_faces,
    finite_mean,
    markdown_table,
    matched_cosines,
    threshold_at_far,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def pick_photos(folder: str, count: int, seed: int) -> list[Path]:
    """A seeded random pick of photos from a folder (sorted first, so the pick is reproducible)."""
    files = sorted(p for p in Path(folder).iterdir() if p.name.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise GanimeAgeError(f"no photos in {folder}")
    order = np.random.default_rng(seed).permutation(len(files))
    return [files[i] for i in order[: max(count * 3, count + 10)]]  # spares for photos without a usable face


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def l1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64)))) / 255.0


def face_box(landmarks: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, slice]:
    x0, y0 = np.floor(landmarks[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(landmarks[:, :2].max(0)).astype(int) + 1
    return slice(max(y0, 0), min(y1, shape[0])), slice(max(x0, 0), min(x1, shape[1]))


def warped_copy(rgb: np.ndarray, landmarks: np.ndarray, seed: int) -> np.ndarray:
    """The photo under one random training warp (head moves, background stays)."""
    from training.systems.reenact import WarpConfig, random_pairs

    image = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    size = max(rgb.shape[:2])
    if rgb.shape[0] != rgb.shape[1]:  # the warp works on squares: pad, warp, crop
        padded = np.zeros((size, size, 3), np.uint8)
        padded[: rgb.shape[0], : rgb.shape[1]] = rgb
        image = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    generator = torch.Generator().manual_seed(seed)
    warped, _ = random_pairs(image, torch.from_numpy(landmarks[None, :, :2]).float(), WarpConfig(), generator)
    out = ((warped[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return np.ascontiguousarray(out[: rgb.shape[0], : rgb.shape[1]])


class ReenactEvaluation:
    name = "reenact"
    help = "reenactment: self-reenactment L1/PSNR and cross-identity pose/AU/identity errors on real photos"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--photos", required=True, help="folder of face photos (one face each, e.g. UTKFace)")
        parser.add_argument("--max-faces", type=int, default=20, help="number of photos to evaluate")
        parser.add_argument("--seed", type=int, default=0, help="photo pick and warp seed")
        parser.add_argument(
            "--reenactor",
            default=None,
            help="trained Reenactor folder/Hub id, or 'untrained' (default: the classical warp)",
        )
        parser.add_argument("--model", default=None, help="ageing model folder (default: the embedded one)")
        parser.add_argument("--age-estimator", default=None, help="age estimator folder (default: the embedded one)")
        parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: best available)")
        parser.add_argument("--recognizer", default=None, help="MobileFaceNet weights (default: the asset)")
        parser.add_argument("--far", type=float, default=0.01, help="false-accept rate of the identity threshold")
        add_report_arguments(parser)

    @staticmethod
    def editor(args: argparse.Namespace) -> Any:
        from ganime_age.editing import EditorConfig, FaceEditor
        from ganime_age.models.reenact import Reenactor

        editor = FaceEditor.from_pretrained(
            args.model,
            age_estimator=args.age_estimator,
            reenactor=args.reenactor if args.reenactor not in (None, "untrained") else None,
            config=EditorConfig(device=args.device),
        )
        if args.reenactor == "untrained":
            torch.manual_seed(0)
            editor = FaceEditor(
                editor.model,
                age_estimator=editor.age_estimator,
                second_age_estimator=editor.second_age_estimator,
                reenactor=Reenactor().eval(),
                config=editor.config,
            )
        return editor

    @staticmethod
    def run(args: argparse.Namespace) -> dict[str, Any]:
        from ganime_age.faces import load_image
        from ganime_age.models.mobilefacenet import FaceRecognizer

        editor = ReenactEvaluation.editor(args)
        engine = editor.reenactment
        analyzer = editor.analyzer
        photos: list[tuple[Path, np.ndarray, Any]] = []
        for path in pick_photos(args.photos, args.max_faces, args.seed):
            rgb = load_image(path)
            try:
                faces = analyzer.analyze(rgb)
            except NoFaceError:
                continue
            if len(faces) == 1 and faces[0].landmarks is not None:
                photos.append((path, rgb, faces[0]))
            if len(photos) == args.max_faces:
                break
        if len(photos) < 3:
            raise GanimeAgeError(f"only {len(photos)} usable photos in {args.photos}; need at least 3")

        # -- self-reenactment
        self_rows = {"method": [], "noop": []}
        for index, (_, rgb, face) in enumerate(photos):
            target = warped_copy(rgb, face.landmarks.landmarks, args.seed * 1000 + index)
            try:
                measured = analyzer.analyze(target)[0]
            except NoFaceError:
                measured = None
            if measured is None or measured.landmarks is None:
                continue
            # same person: the ideal target landmarks are the driver's own, so this measures the renderer
            out = engine.pose(rgb, face, measured.landmarks.landmarks)
            box = face_box(face.landmarks.landmarks, rgb.shape)
            for key, image in (("method", out), ("noop", rgb)):
                self_rows[key].append(
                    [l1(image, target), psnr(image, target), l1(image[box], target[box]), psnr(image[box], target[box])]
                )

        # -- cross-identity: photo i driven by photo i + n/2
        n = len(photos)
        recognizer = FaceRecognizer(args.recognizer)
        pose_err = {"method": [], "noop": []}
        au_err = {"method": [], "noop": []}
        source_crops, output_crops, driver_crops = [], [], []
        failed = 0
        for i in range(n):
            _, src_rgb, src = photos[i]
            _, drv_rgb, drv = photos[(i + n // 2) % n]
            out = np.asarray(engine.image(src_rgb, drv_rgb))
            try:
                measured = analyzer.analyze(out)[0]
            except NoFaceError:
                measured = None
            if measured is None or measured.landmarks is None:
                failed += 1
                pose_err["method"].append([np.nan] * 3)
                au_err["method"].append(np.nan)
                output_crops.append(np.zeros_like(src.aligned.image))
            else:
                pose_err["method"].append(np.abs(measured.pose - drv.pose).tolist())
                au_err["method"].append(float(np.abs(measured.aus - drv.aus).mean()))
                output_crops.append(measured.aligned.image)
            pose_err["noop"].append(np.abs(src.pose - drv.pose).tolist())
            au_err["noop"].append(float(np.abs(src.aus - drv.aus).mean()))
            source_crops.append(src.aligned.image)
            driver_crops.append(drv.aligned.image)

        def batch(crops: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1.0

        src_emb = embed_faces(recognizer, batch(source_crops))
        out_emb = embed_faces(recognizer, batch(output_crops))
        drv_emb = embed_faces(recognizer, batch(driver_crops))
        i, j = np.triu_indices(n, k=1)
        impostor = torch.nn.functional.cosine_similarity(src_emb[i], src_emb[j], dim=1).numpy()
        threshold = threshold_at_far(impostor, args.far)
        out_cos = matched_cosines(out_emb, src_emb)
        out_cos[[k for k in range(n) if np.isnan(au_err["method"][k])]] = np.nan
        drv_cos = matched_cosines(drv_emb, src_emb)

        def summary(rows: list[list[float]]) -> dict[str, float]:
            a = np.asarray(rows, np.float64)
            return {
                "l1": finite_mean(a[:, 0]),
                "psnr": finite_mean(a[:, 1]),
                "face_l1": finite_mean(a[:, 2]),
                "face_psnr": finite_mean(a[:, 3]),
            }

        def cross(key: str, cosines: np.ndarray) -> dict[str, float]:
            p = np.asarray(pose_err[key], np.float64)
            valid = cosines[np.isfinite(cosines)]
            return {
                "yaw_error": finite_mean(p[:, 0]),
                "pitch_error": finite_mean(p[:, 1]),
                "roll_error": finite_mean(p[:, 2]),
                "au_error": finite_mean(au_err[key]),
                "identity_cosine": finite_mean(cosines),
                "identity_verified": accept_rate(valid, threshold),
            }

        method = engine.method if args.reenactor != "untrained" else "untrained reenactor (TPS prior)"
        return {
            "method": method,
            "faces": n,
            "photos": [str(p.name) for p, _, _ in photos],
            "self_reenactment": {
                "method": summary(self_rows["method"]),
                "noop": summary(self_rows["noop"]),
                "pairs": len(self_rows["method"]),
            },
            "cross_identity": {
                "method": cross("method", out_cos),
                "noop": cross("noop", drv_cos),
                "outputs_without_face": failed,
            },
            "identity_threshold": {"far": args.far, "threshold": threshold, "impostor_pairs": int(impostor.size)},
            "num_aus": NUM_AUS,
        }

    @staticmethod
    def markdown(result: dict[str, Any]) -> str:
        s, c = result["self_reenactment"], result["cross_identity"]
        t = result["identity_threshold"]
        lines = [
            f"### Reenactment — {result['method']}, {result['faces']} photos",
            "",
            f"Self-reenactment ({s['pairs']} photos; driver = randomly warped copy of the photo, rendered to the "
            "copy's measured landmarks; against that copy):",
            "",
            markdown_table(
                ["", "L1 (0-1)", "PSNR dB", "face L1", "face PSNR dB"],
                [
                    [
                        result["method"],
                        s["method"]["l1"],
                        s["method"]["psnr"],
                        s["method"]["face_l1"],
                        s["method"]["face_psnr"],
                    ],
                    [
                        "no-op (source as is)",
                        s["noop"]["l1"],
                        s["noop"]["psnr"],
                        s["noop"]["face_l1"],
                        s["noop"]["face_psnr"],
                    ],
                ],
                digits=3,
            ),
            "",
            "Cross-identity (each photo driven by another; errors to the driver, identity to the source):",
            "",
            markdown_table(
                [
                    "",
                    "yaw err °",
                    "pitch err °",
                    "roll err °",
                    "AU err (0-5)",
                    "id cosine",
                    f"id verified (FAR {t['far']:.0%})",
                ],
                [
                    [
                        result["method"],
                        c["method"]["yaw_error"],
                        c["method"]["pitch_error"],
                        c["method"]["roll_error"],
                        c["method"]["au_error"],
                        c["method"]["identity_cosine"],
                        f"{c['method']['identity_verified']:.0%}",
                    ],
                    [
                        "no-op: source (pose/AU) / driver (identity)",
                        c["noop"]["yaw_error"],
                        c["noop"]["pitch_error"],
                        c["noop"]["roll_error"],
                        c["noop"]["au_error"],
                        c["noop"]["identity_cosine"],
                        f"{c['noop']['identity_verified']:.0%}",
                    ],
                ],
                digits=2,
            ),
            "",
            f"Identity threshold {t['threshold']:.3f} at FAR {t['far']:.0%} on {t['impostor_pairs']} pairs of "
            f"different source photos; {c['outputs_without_face']} output(s) had no measurable face.",
        ]
        return "\n".join(lines)
