"""Would averaging the weights of fine-tuned MobileNetV2s (a "model soup") beat each of them? Val figures.

    .venv/bin/python benchmarks/eval_soup.py --member weights --member ~/snakeid-runs/bundle-2.1 \
        [--member RUN/last.pt:ema] [--size 192] [--flip]

Every member must be a MobileNetV2 with the same classes, fine-tuned from the same starting weights
(otherwise averaging weights is meaningless). A member is a bundle folder (its model.pt) or a training
checkpoint ``last.pt`` with ``:ema`` or ``:raw``. For each member alone and for the uniform soup (the
mean of every floating-point tensor, BN statistics included): temperature fitted on val, the app's
thresholds chosen as ``finalize`` does, and the val figures the model card reports — species top-1 on
the 19 species, macro-F1, non-snakes rejected / snakes kept, and the venom warning at <= 1% venomous
unwarned (harmless and non-snakes warned); the soup with averaged BN statistics and with
statistics re-estimated on training photos. ``--flip`` also averages each photo with its mirror.
Training side (fitted on val, so optimistic, as the model card says).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def load_member(spec: str):
    import torch

    path, _, which = spec.partition(":")
    path = Path(path).expanduser()
    if path.is_dir():
        return torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    saved = torch.load(path, map_location="cpu", weights_only=False)
    return saved["ema"] if (which or "ema") == "ema" else saved["model"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--member", action="append", required=True)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--bn-photos", type=int, default=1024,
                        help="training photos whose batch statistics replace the soup's averaged BN statistics")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args()

    import torch
    from snakeid_desktop.catalogue import default_catalogue
    from snakeid_desktop.model import build_model
    from snakeid_desktop.preprocess import Preprocessing
    from snakeid_desktop.training import data as tdata
    from snakeid_desktop.training.common import TrainConfig, load_data, predict_logits
    from snakeid_desktop.training.refit_risk import refitted_figures

    torch.set_num_threads(args.threads)
    classes, train_s, train_images, val_s, val_images = load_data(TrainConfig(data=args.data))
    labels = torch.tensor([s.label for s in val_s])
    x = tdata.eval_tensors(val_images, Preprocessing(args.size, round(args.size / 0.875)))
    catalogue = default_catalogue()

    def logits_of(state: dict) -> torch.Tensor:
        model = build_model("mobilenet_v2", num_classes=len(classes))
        model.load_state_dict(state)
        model = model.to(memory_format=torch.channels_last)
        out = predict_logits(model, x, torch.device("cpu"))
        if args.flip:
            out = (out + predict_logits(model, torch.flip(x, dims=[3]), torch.device("cpu"))) / 2
        return out

    def recalibrate_bn(state: dict) -> dict:
        """Averaged running statistics do not describe the averaged network's activations: re-estimate them
        (cumulative average) on training photos at the eval crop, the weights untouched."""
        model = build_model("mobilenet_v2", num_classes=len(classes))
        model.load_state_dict(state)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None
        model.train()
        order = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(0))[:args.bn_photos]
        prep = Preprocessing(args.size, round(args.size / 0.875))
        with torch.no_grad():
            for i in range(0, len(order), 64):
                model(tdata.eval_tensors([train_images[j] for j in order[i:i + 64].tolist()], prep))
        return model.state_dict()

    def report(name: str, logits: torch.Tensor) -> None:
        f = refitted_figures(logits, labels, classes, catalogue)
        print(f"{name}: species top-1 {100 * f['species_top1']:.1f}%  macro-F1 {f['macro_f1']:.3f}  ECE {f['ece']:.3f}  "
              f"rejected/kept {100 * f['rejected']:.1f}/{100 * f['kept']:.1f}%  warning at {f['risk']}: venomous "
              f"unwarned {100 * f['venomous_unwarned']:.1f}%, harmless warned {100 * f['harmless_warned']:.1f}%, "
              f"non-snakes warned {100 * f['non_snakes_warned']:.1f}%", flush=True)

    states = [load_member(spec) for spec in args.member]
    for spec, state in zip(args.member, states):
        report(spec, logits_of(state))
    soup = {k: (torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.dtype.is_floating_point else v)
            for k, v in states[0].items()}
    report(f"uniform soup of {len(states)}, averaged BN statistics", logits_of(soup))
    report(f"uniform soup of {len(states)}, BN re-estimated on {args.bn_photos} training photos",
           logits_of(recalibrate_bn(soup)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
