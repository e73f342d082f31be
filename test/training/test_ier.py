"""`ier`: pseudo-label construction, k-means, the losses' gradients, and a 2-iteration run."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from soundloc_training.checkpoints import load_model
from soundloc_training.cli.evaluate import main as eval_main
from soundloc_training.config import TrainConfig
from soundloc_training.data import VisualInputs, load_table
from soundloc_training.losses.cluster_contrast import InterFrameClusterContrast
from soundloc_training.losses.region_contrast import IntraFrameRegionContrast
from soundloc_training.methods.ier import IERMethod
from soundloc_training.models.localizer import Localizer
from soundloc_training.orchestration.ier import from_previous, iteration_config, run_ier
from soundloc_training.pseudo_labels import (
    PseudoLabels,
    clip_embeddings,
    confident_regions,
    kmeans,
)

# a hand-made previous-iteration map: a bright 2 x 2 object top-left, a faint halo, background
HAND_MADE = torch.tensor(
    [
        [0.9, 0.8, 0.4, 0.0],
        [0.8, 1.0, 0.5, 0.1],
        [0.3, 0.5, 0.2, 0.1],
        [0.0, 0.2, 0.1, 0.0],
    ]
)


def test_hard_regions_of_a_hand_made_map():
    sounding, non_sounding = confident_regions(HAND_MADE[None], 0.6, 0.3)
    assert sounding[0].tolist() == [
        [1, 1, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    assert non_sounding[0].tolist() == [
        [0, 0, 0, 1],
        [0, 0, 0, 1],
        [0, 0, 1, 1],
        [1, 1, 1, 1],
    ]  # 0.3 and the halo (0.4, 0.5) lie in the uncertain band: in neither region
    # thresholds act on the min-max normalized map: an affine change of the map changes nothing
    rescaled = confident_regions(0.2 * HAND_MADE[None] - 0.7, 0.6, 0.3)
    assert torch.equal(rescaled[0], sounding) and torch.equal(rescaled[1], non_sounding)
    # a higher sounding threshold keeps only the peak
    peak, _ = confident_regions(HAND_MADE[None], 0.95, 0.3)
    assert peak[0].nonzero().tolist() == [[1, 1]]


def test_soft_regions_and_degenerate_maps():
    sounding, non_sounding = confident_regions(HAND_MADE[None], 0.6, 0.3, softness=0.05)
    hard_sounding, hard_non_sounding = confident_regions(HAND_MADE[None], 0.6, 0.3)
    assert torch.all((sounding > 0.5) == hard_sounding.bool())
    assert torch.all((non_sounding > 0.5) == hard_non_sounding.bool())
    assert sounding[0, 1, 1] > sounding[0, 0, 1] > sounding[0, 1, 2] > sounding[0, 3, 3]
    assert sounding.min() > 0 and sounding.max() < 1  # soft: no hard zeros or ones
    constant_fg, constant_bg = confident_regions(torch.full((1, 4, 4), 0.3), 0.6, 0.3)
    assert constant_fg.sum() == 0 and constant_bg.sum() == 0  # a flat map is confident of nothing
    with pytest.raises(ValueError, match="bg_threshold < fg_threshold"):
        confident_regions(HAND_MADE[None], 0.3, 0.6)


def partition(labels: np.ndarray) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for sample, label in enumerate(labels):
        groups.setdefault(int(label), set()).add(sample)
    return {frozenset(g) for g in groups.values()}


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated groups of unit vectors (20 each) in 8-D, with their group ids."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:3]
    truth = np.repeat(np.arange(3), 20)
    samples = centres[truth] + 0.05 * rng.standard_normal((60, 8))
    return samples / np.linalg.norm(samples, axis=1, keepdims=True), truth


def test_kmeans_recovers_groups_and_is_independent_of_sample_order():
    samples, truth = blobs()
    labels, centres = kmeans(samples, 3, seed=0)
    assert partition(labels) == partition(truth)
    assert centres.shape == (3, 8)
    rng = np.random.default_rng(1)
    for k in (3, 7):  # also when k exceeds the true number of groups (clusters are then split)
        reference, _ = kmeans(samples, k, seed=0)
        for _ in range(3):
            permutation = rng.permutation(len(samples))
            shuffled, _ = kmeans(samples[permutation], k, seed=0)
            assert partition(shuffled) == partition(reference[permutation])
            np.testing.assert_array_equal(shuffled, reference[permutation])  # same numbering too
    assert len(np.unique(kmeans(samples, 100, seed=0)[0])) <= 60  # k capped at the sample count


def test_clip_embeddings_average_each_clips_frames():
    frames = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0], [2.0, 0.0]])
    clips = clip_embeddings(frames, np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(clips, [[2**-0.5, 2**-0.5], [1.0, 0.0]])


def test_intra_frame_gradient_pulls_the_sounding_region_and_pushes_the_non_sounding_one():
    sounding, non_sounding = confident_regions(HAND_MADE[None], 0.6, 0.3)
    own = torch.full((1, 4, 4), 0.2, requires_grad=True)  # flat: the loss must separate them
    IntraFrameRegionContrast(tau=0.07)(own, sounding, non_sounding).backward()
    gradient = own.grad[0]
    assert torch.all(gradient[sounding[0].bool()] < 0)  # descent raises similarity there
    assert torch.all(gradient[non_sounding[0].bool()] > 0)  # and lowers it there
    uncertain = ~(sounding[0].bool() | non_sounding[0].bool())
    assert torch.all(gradient[uncertain] == 0)
    # and a map that already separates them costs less than one that inverts them
    loss = IntraFrameRegionContrast(tau=0.07)
    good = 0.9 * sounding - 0.5 * non_sounding
    assert loss(good, sounding, non_sounding) < loss(-good, sounding, non_sounding)


def test_inter_frame_gradient_respects_the_audio_clusters():
    clip_ids = torch.tensor([0, 0, 1, 2, 3])  # frames 0 and 1 come from one clip
    clusters = torch.tensor([0, 0, 0, 1, 1])  # clip 1 sounds like clip 0; clips 2, 3 differ
    for cluster_positives in (True, False):
        scores = torch.full((5, 5), 0.1, requires_grad=True)
        InterFrameClusterContrast(0.07, cluster_positives)(scores, clip_ids, clusters).backward()
        gradient = scores.grad
        assert torch.all(gradient.diagonal() < 0)  # own pair: pulled together
        assert gradient[0, 3] > 0 and gradient[3, 0] > 0  # other cluster: pushed apart
        assert gradient[0, 1] == 0 and gradient[1, 0] == 0  # same clip: ignored
        same_sound = gradient[[0, 2, 3, 4], [2, 0, 4, 3]]  # other clips of the own cluster
        if cluster_positives:
            assert torch.all(same_sound < 0)  # extra positives
        else:
            assert torch.all(same_sound == 0)  # not negatives either


def test_pseudo_regions_are_mirrored_with_the_features():
    maps = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    labels = PseudoLabels(maps, -maps, torch.zeros(2, dtype=torch.int64))
    sounding, non_sounding = labels.regions(torch.tensor([1, 0]), torch.tensor([True, False]))
    assert torch.equal(sounding[0], maps[1].flip(-1)) and torch.equal(sounding[1], maps[0])
    assert torch.equal(non_sounding[0], -maps[1].flip(-1))


def test_ier_steps_separate_the_pseudo_regions():
    """Real optimizer steps of the iteration-k objective on fixed features move the sounding
    region's similarity above the non-sounding region's."""
    torch.manual_seed(0)
    config = TrainConfig(data="synthav:unused", out_dir="unused", method="ier", feature_dropout=0.0)
    model = Localizer(config.backbone, pretrained=False, embed_dim=16)
    method = IERMethod(model, config)
    features = torch.randn(8, model.backbone.out_channels, 4, 4)
    logmel = torch.randn(8, 1, 32, 48)  # small: the step count matters, not the audio
    sounding = torch.zeros(8, 4, 4)
    sounding[:, :2, :2] = 1  # the object: top left of every frame
    method.set_pseudo_labels(PseudoLabels(sounding, 1 - sounding, torch.arange(8) % 4))
    frames, flipped = torch.arange(8), torch.zeros(8, dtype=torch.bool)
    clip_ids = torch.arange(8)

    def gap() -> float:
        with torch.no_grad():
            method.eval()
            own = model.paired_similarity(model.embed_visual(features), model.embed_audio(logmel))
            method.train()
        return float((own * sounding).sum() / sounding.sum() - (own * (1 - sounding)).sum()
                     / (1 - sounding).sum())  # fmt: skip

    before = gap()
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-2)
    for _ in range(10):
        loss, stats = method(features, logmel, clip_ids, False, frames, flipped)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert set(stats) == {"intra", "inter", "mil", "retrieval_acc"}
    assert gap() > before + 0.2


def test_two_iterations_on_synthav_end_to_end(fast_config, capsys):
    config = replace(fast_config, method="ier", epochs=2, iterations=2, iteration_epochs=1,
                     audio_clusters=4, limit_train=240)  # fmt: skip  # 48 clips: fast
    out = Path(config.out_dir)
    partial = run_ier(config, stop_after=3)  # iteration 0 and 1, then stop
    assert partial["iterations_done"] == 2 and not (out / "summary.json").exists()
    assert (out / "iter_1" / "summary.json").is_file() and not (out / "iter_2").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        run_ier(config)
    summary = run_ier(config, resume=True)
    for k, epochs in ((0, 2), (1, 1), (2, 1)):
        directory = out / f"iter_{k}"
        for name in ("best.pt", "last.pt", "summary.json", "log.jsonl", "contact_sheet_val.png"):
            assert (directory / name).is_file(), (k, name)
        assert len((directory / "log.jsonl").read_text().splitlines()) == epochs
    for k in (1, 2):
        labels = json.loads((out / f"iter_{k}" / "pseudo_labels.json").read_text())
        assert labels["from"].endswith(f"iter_{k - 1}/best.pt")
        assert 0 < labels["sounding_fraction"] < 1 and 0 < labels["non_sounding_fraction"] < 1
        assert labels["clusters"] == 4 and sum(labels["cluster_sizes"]) == 48
        assert (out / f"iter_{k}" / "pseudo_labels_train.png").is_file()
        line = json.loads((out / f"iter_{k}" / "log.jsonl").read_text().splitlines()[0])
        assert {"intra", "inter", "mil"} <= set(line["train"])  # trained the iteration-k objective
    assert json.loads((out / "iter_0" / "log.jsonl").read_text().splitlines()[0])["train"].keys() \
        == {"loss", "retrieval_acc"}  # fmt: skip  # iteration 0: the baseline objective
    chosen = summary["iteration"]
    assert (
        summary["best"] == json.loads((out / f"iter_{chosen}" / "summary.json").read_text())["best"]
    )
    assert summary["best"]["auc"] == max(i["best"]["auc"] for i in summary["iterations"])
    assert summary["epochs_done"] == 4 and json.loads((out / "summary.json").read_text())
    assert (out / "best.pt").read_bytes() == (out / f"iter_{chosen}" / "best.pt").read_bytes()
    # iteration 1's start: iteration 0's best weights and pseudo-labels from that model; then
    # its training moved the weights
    previous = out / "iter_0" / "best.pt"
    fresh = IERMethod(Localizer(config.backbone, embed_dim=config.embed_dim), config)
    table = load_table(
        config.data, "train", config.image_size, config.audio_frontend, config.limit_train
    )
    from_previous(previous, iteration_config(config, 1))(
        fresh, table, VisualInputs(fresh.model, table, config.image_size, config.cache_dir)
    )
    start = torch.load(previous, weights_only=False)["model"]
    for key, value in start.items():
        torch.testing.assert_close(fresh.model.state_dict()[key], value, rtol=0, atol=0)
    assert fresh.pseudo_labels.sounding.shape == (240, 8, 8)  # 128 px at stride 16
    after = torch.load(out / "iter_1" / "last.pt", weights_only=False)["model"]
    assert any(not torch.equal(start[k], after[k]) for k in start)
    _, loaded = load_model(out / "best.pt")
    assert loaded.method == "ier"
    capsys.readouterr()
    code = eval_main(["--data", config.data, "--split", "val", "--checkpoint",
                      str(out / "best.pt"), "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)  # the chosen iteration's selection figures
    assert result["method"] == "ier"
    for name in ("ciou", "auc"):
        assert result["metrics"][name] == pytest.approx(summary["best"][name], abs=1e-4), name


def test_ier_settings_are_checked():
    config = TrainConfig(data="synthav:x", out_dir="y", method="ier", fg_threshold=0.2)
    with pytest.raises(ValueError, match="bg_threshold < fg_threshold"):
        IERMethod(Localizer("resnet18", pretrained=False, embed_dim=8), config)
