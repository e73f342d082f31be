"""USPL: masking augmentation, SMR affinities / pair labels / random walk, SPS, and a full run."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from soundloc_training.affinity import (
    RandomWalk,
    cross_pair_coverage,
    disk_offsets,
    pair_affinities,
    pair_labels,
    shifted,
    walk_weights,
)
from soundloc_training.checkpoints import load_stage
from soundloc_training.cli.evaluate import main as eval_main
from soundloc_training.cli.train import main as train_main
from soundloc_training.config import TrainConfig
from soundloc_training.data import load_table
from soundloc_training.export import export_bundle, model_inputs
from soundloc_training.losses.affinity import AffinityLoss
from soundloc_training.losses.contrastive import MultipleInstanceContrast, top_fraction_mean
from soundloc_training.losses.segmentation import PseudoMaskLoss
from soundloc_training.masking import RegionMasking
from soundloc_training.models.backbones import build_backbone
from soundloc_training.models.pixel_heads import (
    PIXEL_STRIDE,
    AffinityHead,
    SegmentationHead,
    normalized_map,
)
from soundloc_training.onnx_compat import tensorrt_problems
from soundloc_training.orchestration.uspl import run_uspl
from soundloc_training.pixel_stages import PixelInputs, refined_maps, sweep_walks
from soundloc_training.pseudo_labels import confident_regions
from soundloc_training.scoring import evaluate_heatmaps

from soundloc_ros.core.backends.onnxruntime import OnnxRuntimeBackend

RADIUS_1 = [(-1, 0), (0, -1), (0, 1), (1, 0)]


# ------------------------------------------------------------------ mask augmentation


def test_excluded_positions_take_no_part_in_the_pooling():
    values = torch.tensor([[5.0, 1.0, 3.0, 2.0]])
    hidden = torch.tensor([[True, False, False, False]])
    assert float(top_fraction_mean(values, 0.0)) == 5.0  # the max
    assert float(top_fraction_mean(values, 0.0, excluded=hidden)) == 3.0  # next best
    assert float(top_fraction_mean(values, 0.5, largest=False, excluded=hidden)) == 1.5
    with pytest.raises(ValueError, match="every element excluded"):
        top_fraction_mean(values, 0.0, excluded=torch.ones_like(hidden))
    # a masked view of the contrast: hiding image 0's matching peak makes its own pair lose
    similarity = torch.zeros(2, 2, 1, 2)
    similarity[0, 0, 0, 0] = 1.0  # image 0 matches audio 0 at position 0 only
    similarity[1, 1, 0, 1] = 1.0
    similarity[0, 1, 0, 1] = 0.5
    loss = MultipleInstanceContrast(tau=0.1)
    clips = torch.tensor([0, 1])
    hide_peak = torch.tensor([[[True, False]], [[False, False]]])
    assert loss.logits(similarity, clips)[0].argmax() == 0
    assert loss.logits(similarity, clips, excluded=hide_peak)[0].argmax() == 1
    assert loss(similarity, clips, excluded=hide_peak) > loss(similarity, clips)


def test_guided_masking_hides_the_best_matching_positions():
    maps = torch.arange(16.0).view(1, 4, 4)
    hidden = RegionMasking("guided", 0.25)(maps)
    assert hidden.sum() == 4 and hidden.flatten()[-4:].all()  # the four largest values
    torch.manual_seed(0)
    blocks = RegionMasking("random", 0.25)(torch.zeros(200, 8, 8))
    areas = blocks.flatten(1).sum(1).float()
    assert 12 <= float(areas.mean()) <= 20  # about a quarter of 64 positions
    assert len({tuple(b.nonzero()[0].tolist()) for b in blocks}) > 20  # placed at random
    for block in blocks[:20]:  # one axis-aligned rectangle each
        rows, cols = block.nonzero().T
        assert block[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
    with pytest.raises(ValueError, match="mask_mode"):
        RegionMasking("everywhere")


# ------------------------------------------------------------------ SMR


def test_affinities_of_a_hand_checked_feature_map():
    # 2 channels on a 2 x 2 grid: f(0,0) = (0, 0), f(0,1) = (1, 3), f(1,0) = (0, 0.5),
    # f(1,1) = (2, 2)
    features = torch.tensor([[[0.0, 1.0], [0.0, 2.0]], [[0.0, 3.0], [0.5, 2.0]]])[None]
    affinity = pair_affinities(features, RADIUS_1)[0]  # [4, 2, 2]
    up, left, right, down = affinity
    assert math.isclose(float(right[0, 0]), math.exp(-(1 + 3) / 2), rel_tol=1e-6)
    assert math.isclose(float(down[0, 0]), math.exp(-(0 + 0.5) / 2), rel_tol=1e-6)
    assert math.isclose(float(right[1, 0]), math.exp(-(2 + 1.5) / 2), rel_tol=1e-6)
    assert math.isclose(float(down[0, 1]), math.exp(-(1 + 1) / 2), rel_tol=1e-6)
    # symmetric: x's right neighbour sees x as its left one
    assert torch.allclose(left[:, 1], right[:, 0]) and torch.allclose(up[1], down[0])
    # pairs leaving the grid have no affinity
    assert up[0].eq(0).all() and left[:, 0].eq(0).all() and right[:, 1].eq(0).all()
    # identical features: affinity 1
    assert torch.allclose(pair_affinities(torch.ones(1, 3, 2, 2), [(0, 1)])[0, 0, :, 0],
                          torch.ones(2))  # fmt: skip


def test_disk_offsets():
    assert disk_offsets(1) == RADIUS_1
    full, half = disk_offsets(4), disk_offsets(4, half=True)
    assert len(full) == 48 and len(half) == 24
    assert sorted(half + [(-dy, -dx) for dy, dx in half]) == sorted(full)


def test_pair_labels_ignore_unconfident_regions():
    # one row: sounding | sounding | band | non-sounding | non-sounding
    sounding = torch.tensor([[[True, True, False, False, False]]])
    non_sounding = torch.tensor([[[False, False, False, True, True]]])
    fg, bg, cross = (p[0, :, 0] for p in pair_labels(sounding, non_sounding, [(0, 1), (0, 2)]))
    assert fg[0].tolist() == [True, False, False, False, False]  # 0-1
    assert bg[0].tolist() == [False, False, False, True, False]  # 3-4
    assert not cross[0].any()  # every step-1 pair across the object touches the band (2)
    assert cross[1].tolist() == [False, True, False, False, False]  # 1-3 jumps over the band
    assert not (fg[1].any() or bg[1].any())  # 0-2, 2-4 touch the band; 3-5 leaves the grid
    # a labelled pair has exactly one label
    assert int((fg.int() + bg.int() + cross.int()).max()) == 1
    # the loss uses those pairs only: affinities of unlabelled pairs get no gradient
    affinities = torch.full((1, 2, 1, 5), 0.5, requires_grad=True)
    loss, _ = AffinityLoss()(affinities, *pair_labels(sounding, non_sounding, [(0, 1), (0, 2)]))
    loss.backward()
    labelled = (fg | bg | cross)[:, None]  # [2, 1, 5]
    assert (affinities.grad[0] != 0).eq(labelled).all()


def test_pairs_must_span_the_unconfident_band_to_see_a_boundary():
    # a smooth blob on the 56 x 56 grid, as the upsampled coarse map is: between its confident
    # core (> 0.8) and confident outside (< 0.3) lies a band wider than the walk's radius
    yy, xx = torch.meshgrid(torch.arange(56.0), torch.arange(56.0), indexing="ij")
    blob = torch.exp(-((yy - 28) ** 2 + (xx - 28) ** 2) / (2 * 8.0**2))[None]  # [1, 56, 56]
    sounding, non_sounding = confident_regions(blob, 0.8, 0.3)
    config = TrainConfig(data="x", out_dir="y")
    for radius, has_cross in ((config.affinity_radius, False), (config.pair_radius, True)):
        _, _, cross = pair_labels(sounding.bool(), non_sounding.bool(), disk_offsets(radius, True))
        assert bool(cross.any()) is has_cross, radius


def test_cross_pair_coverage_counts_pairs_by_hand():
    # one row of 6: frame 0 sounding at x 0-1, non-sounding at x 4-5; frame 1 all non-sounding.
    # Radius 3 (only rightward offsets 1-3 stay on a 1-row grid): frame 0 has fg (0,1), bg (4,5)
    # and cross (1,4); frame 1 has 5 + 4 + 3 bg pairs: 1 cross of 15 labelled, in 1 of 2 frames.
    sounding = torch.tensor([[1, 1, 0, 0, 0, 0], [0] * 6], dtype=torch.bool)[:, None]  # [2, 1, 6]
    non_sounding = torch.tensor([[0, 0, 0, 0, 1, 1], [1] * 6], dtype=torch.bool)[:, None]
    assert cross_pair_coverage(sounding, non_sounding, 3) == pytest.approx((1 / 15, 0.5))
    assert cross_pair_coverage(sounding, non_sounding, 2) == (0.0, 0.0)  # (1,4) is 3 apart


def test_sweep_script_refuses_bad_arguments(tmp_path, capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "sweep_smr.py"
    spec = importlib.util.spec_from_file_location("sweep_smr", path)
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    assert sweep.main([str(tmp_path / "missing.pt")]) == 2
    assert "give a finished run's OUT/smr/best.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        sweep.main([str(tmp_path / "missing.pt"), "--radii", "0", "4"])
    assert exit_info.value.code == 2
    assert "--radii must be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_low_level_features_are_on_the_pixel_grid(name):
    backbone = build_backbone(name, pretrained=name == "efficientnet_lite0")
    low = backbone.low_level(torch.randn(2, 3, 64, 64))
    assert low.shape == (2, backbone.low_level_channels, 64 // PIXEL_STRIDE, 64 // PIXEL_STRIDE)
    head = AffinityHead(backbone.low_level_channels, width=8)
    assert head(torch.randn(2, 3, 64, 64), low).shape == (2, 8, 16, 16)


def _random_features(seed: int, size: int = 6) -> torch.Tensor:
    return torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(seed))


def refine(coarse, affinities, offsets, beta, steps):
    return RandomWalk(coarse.shape[-2:], offsets, beta, steps)(coarse, affinities)


def moved_mass(coarse, affinities, offsets, beta, steps):
    """The walk as mass moving along the transition, m'(y) = sum_o m(y - o) T_o(y - o), from
    m_0 = D * coarse: an independent form of P^t coarse (= m_t / D, W being symmetric)."""
    weights = walk_weights(affinities, beta)  # [B, 1 + P, H, W]
    degree = weights.sum(dim=1)  # [B, H, W]
    transition = weights / degree[:, None]
    mass = coarse * degree
    for _ in range(steps):
        outgoing = transition * mass[:, None]  # [B, 1 + P, H, W]: m(x) T_o(x)
        moves = enumerate([(0, 0), *offsets])
        mass = sum(shifted(outgoing[:, p], (-dy, -dx)) for p, (dy, dx) in moves)
    return mass, degree


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_the_walk_equals_moving_the_mass(radius):
    """RandomWalk's neighbour gathers == the mass-moving walk, on a non-square batch."""
    offsets = disk_offsets(radius)
    generator = torch.Generator().manual_seed(radius)
    features = 0.3 * torch.randn(3, 4, 11, 17, generator=generator)
    affinities = pair_affinities(features, offsets)  # [3, P, 11, 17]
    coarse = torch.rand(3, 11, 17, generator=generator)
    mass, degree = moved_mass(coarse, affinities, offsets, 4.0, 25)
    refined = refine(coarse, affinities, offsets, 4.0, 25)
    assert torch.allclose(refined, mass / degree, atol=1e-5)
    # the degree-weighted total is what the walk keeps
    assert torch.allclose((refined * degree).sum((1, 2)), (coarse * degree).sum((1, 2)), rtol=1e-5)


def test_the_walk_of_a_hand_checked_row():
    # one row of 3, beta 1: a(0, 1) = 1, a(1, 2) = 0.5. Transitions (self, left, right):
    # x0 (1, -, 1) / 2; x1 (1, 1, 0.5) / 2.5; x2 (1, 0.5, -) / 1.5. From (1, 0, 0):
    # step 1: (0.5, 0.4, 0); step 2: (0.5 * 0.5 + 0.5 * 0.4, 0.4 * 0.4 + 0.4 * 0.5, 0.4 / 3)
    affinities = torch.zeros(1, 4, 1, 3)  # RADIUS_1: up, left, right, down
    affinities[0, 1, 0] = torch.tensor([0.0, 1.0, 0.5])
    affinities[0, 2, 0] = torch.tensor([1.0, 0.5, 0.0])
    coarse = torch.tensor([[[1.0, 0.0, 0.0]]])
    one, two = (refine(coarse, affinities, RADIUS_1, 1.0, s)[0, 0] for s in (1, 2))
    assert torch.allclose(one, torch.tensor([0.5, 0.4, 0.0]))
    assert torch.allclose(two, torch.tensor([0.45, 0.36, 0.4 / 3]))
    assert float(refine(coarse, affinities, RADIUS_1, 1.0, 0)[0, 0, 0]) == 1.0  # 0 steps: as is


def test_random_walk_converges():
    offsets = disk_offsets(2)
    weights = walk_weights(pair_affinities(_random_features(0), offsets), beta=2.0)
    # the refined map converges: to the degree-weighted mean of the coarse map (one connected grid)
    coarse = torch.rand(1, 6, 6, generator=torch.Generator().manual_seed(2))
    affinities = pair_affinities(_random_features(0), offsets)
    long, longer = (refine(coarse, affinities, offsets, 2.0, s) for s in (1500, 3000))
    assert float((long - longer).abs().max()) < 1e-5
    degree = weights.sum(1)
    limit = float((coarse * degree).sum() / degree.sum())
    assert torch.allclose(longer, torch.full_like(longer, limit), atol=1e-4)


def test_refinement_equals_the_dense_random_walk():
    """refine(c) = P^t c with P = D^-1 W (AffinityNet's T^t applied to the map)."""
    offsets, size = disk_offsets(2), 5
    affinities = pair_affinities(_random_features(3, size), offsets)  # [1, P, 5, 5]
    weights = walk_weights(affinities, beta=3.0)[0]  # [1 + P, 5, 5]
    dense = torch.zeros(size * size, size * size)
    for p, (dy, dx) in enumerate([(0, 0), *offsets]):
        for y in range(size):
            for x in range(size):
                if 0 <= y + dy < size and 0 <= x + dx < size:
                    dense[y * size + x, (y + dy) * size + x + dx] = weights[p, y, x]
    assert torch.allclose(dense, dense.T, atol=1e-6)  # W is symmetric
    transition = dense / dense.sum(dim=1, keepdim=True)
    coarse = torch.rand(1, size, size, generator=torch.Generator().manual_seed(4))
    expected = torch.linalg.matrix_power(transition, 7) @ coarse.flatten()
    got = refine(coarse, affinities, offsets, 3.0, 7)
    assert torch.allclose(got.flatten(), expected, atol=1e-5)


def test_the_walk_stops_at_an_edge_of_the_features():
    """A coarse blob spilling over an object's edge is pulled back to the edge: inside each
    region the walk averages, and the background's average is low because it is large."""
    features = torch.zeros(1, 1, 8, 12)
    features[..., :, :4] = 10.0  # the object: columns 0..3; affinity across the edge ~ exp(-10)
    coarse = torch.zeros(1, 8, 12)
    coarse[0, :, 1:6] = 1.0  # the coarse map covers columns 1..5: misses 0, spills onto 4, 5
    offsets = disk_offsets(2)
    refined = refine(coarse, pair_affinities(features, offsets), offsets, 8.0, 300)[0]
    assert float(refined[:, :4].min()) > 0.7  # the object fills in (column 0 included)
    assert float(refined[:, 4:].max()) < 0.3  # the spill-over fades into the background
    assert (refined > 0.5).eq(torch.arange(12) < 4).all()


# ------------------------------------------------------------------ SPS


def test_pseudo_mask_loss_leaves_the_undecided_band_out():
    refined = torch.tensor([[[0.9, 0.55, 0.45, 0.1]]])
    logits = torch.zeros(1, 1, 4, requires_grad=True)
    PseudoMaskLoss(band=0.1)(logits, refined).backward()
    assert logits.grad[0, 0].ne(0).tolist() == [True, False, False, True]
    assert logits.grad[0, 0, 0] < 0 < logits.grad[0, 0, 3]  # raise the sounding pixel's logit


def test_pseudo_mask_level_moves_the_mask_and_its_band():
    refined = torch.tensor([[[0.9, 0.75, 0.65, 0.55]]])
    logits = torch.zeros(1, 1, 4, requires_grad=True)
    PseudoMaskLoss(level=0.7, band=0.1)(logits, refined).backward()
    assert logits.grad[0, 0].ne(0).tolist() == [True, False, False, True]
    assert logits.grad[0, 0, 0] < 0 < logits.grad[0, 0, 3]  # 0.55 < 0.7 - 0.1: non-sounding
    with pytest.raises(ValueError, match="both sides"):
        PseudoMaskLoss(level=0.9, band=0.15)


def test_an_sps_training_step_lowers_its_loss():
    torch.manual_seed(0)
    head = SegmentationHead(backbone_channels=8, width=8)
    images, features = torch.randn(4, 3, 32, 32), torch.randn(4, 8, 2, 2)
    coarse = torch.rand(4, 2, 2)
    refined = torch.zeros(4, 8, 8)
    refined[:, 2:6, 1:5] = 1.0  # a square pseudo-mask on the 8 x 8 pixel grid
    images[:, :, 8:24, 4:20] += 2.0  # ... where the image is brighter
    loss_fn = PseudoMaskLoss(band=0.1)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)

    def step() -> float:
        loss = loss_fn(head(images, features, coarse), refined)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss)

    before = step()
    with torch.no_grad():  # train mode throughout: BatchNorm on this batch's statistics
        assert float(loss_fn(head(images, features, coarse), refined)) < before
    for _ in range(30):
        last = step()
    assert last < 0.5 * before


# ------------------------------------------------------------------ the run


def test_uspl_run_end_to_end(fast_config, tmp_path, capsys):
    config = replace(fast_config, method="uspl", epochs=2, limit_train=240, smr_epochs=1,
                     sps_epochs=2, pixel_batch_size=48, walk_steps=8)  # fmt: skip
    out = Path(config.out_dir)
    partial = run_uspl(config, stop_after=1)  # the coarse stage's first epoch
    assert partial["epochs_done"] is None and not (out / "smr").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        run_uspl(config)
    summary = run_uspl(config, resume=True)
    for name in ("coarse/best.pt", "smr/best.pt", "sps/best.pt", "best.pt", "stages_val.png",
                 "summary.json", "sps/log.jsonl"):  # fmt: skip
        assert (out / name).is_file(), name
    coarse_config = yaml.safe_load((out / "coarse" / "config.yaml").read_text())
    assert coarse_config["method"] == "baseline+maskaug"
    coarse_log = json.loads((out / "coarse" / "log.jsonl").read_text().splitlines()[0])
    assert {"full", "masked"} <= set(coarse_log["train"])  # the masked view was trained
    sps_log = [json.loads(line) for line in (out / "sps" / "log.jsonl").read_text().splitlines()]
    assert len(sps_log) == 2 and all("miou" in line["val"] for line in sps_log)
    assert summary["stages"]["sps"]["best"]["miou"] == max(x["val"]["miou"] for x in sps_log)
    # the stage checkpoints carry the coarse model: the refined and segmented rows
    rows = {}
    for name in ("coarse/best.pt", "smr/best.pt", "best.pt"):
        assert eval_main(["--data", config.data, "--split", "test", "--checkpoint",
                          str(out / name), "--json"]) == 0  # fmt: skip
        row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        rows[row["method"]] = row["metrics"]
    assert set(rows) == {"baseline+maskaug", "baseline+maskaug+smr", "uspl"}
    assert all(0 <= m["miou"] <= 1 for m in rows.values())
    # the sweep scores maps as the protocol does: steps 0 at 0.5 is the upsampled coarse map's
    # mIoU, and the configured walk at 0.5 is the refined maps' mIoU
    _, localizer, affinity, _ = load_stage(out / "smr" / "best.pt")
    val = PixelInputs(localizer, load_table(config.data, "val", 128, config.audio_frontend),
                      config)  # fmt: skip
    ious = sweep_walks(affinity, val, config, [(8.0, 0), (config.affinity_beta, 8)], [0.5, 0.8])
    coarse = list(normalized_map(val.coarse, val.grid)[:, 0].numpy())
    assert ious[0, 0] == pytest.approx(evaluate_heatmaps(coarse, val.table)["miou"], abs=1e-4)
    refined = list(refined_maps(affinity, val, config).numpy())
    assert ious[1, 0] == pytest.approx(evaluate_heatmaps(refined, val.table)["miou"], abs=1e-4)
    assert ious[0, 1] != ious[0, 0]
    # the bundle's mask output is the SPS head's, from the same forward pass
    bundle, differences = export_bundle(out / "best.pt", tmp_path / "bundle", frames=2)
    assert bundle.mask is not None and bundle.mask.tensor.shape == (1, 1, 32, 32)
    assert max(differences.values()) <= 1e-4
    _, localizer, head, _ = load_stage(out / "best.pt")
    image = torch.randn(1, 3, 128, 128)
    audio = torch.randn(1, 1, *config.audio_frontend.shape)
    outputs = OnnxRuntimeBackend(bundle, use_gpu=False).run(
        {"image": image.numpy(), "audio": audio.numpy()}
    )
    with torch.no_grad():
        features = localizer.backbone(image)
        visual = localizer.embed_visual(features)
        similarity = localizer.paired_similarity(visual, localizer.embed_audio(audio))
        expected = head(image, features, similarity)[0].numpy()
    np.testing.assert_allclose(outputs["mask"][0, 0], expected, atol=1e-4)
    np.testing.assert_allclose(outputs["coarse"][0], similarity.numpy() / config.tau, atol=1e-4)
    # both stage checkpoints export SMR's refined map as the heatmap: training's, on real frames
    smr_bundle, _ = export_bundle(out / "smr" / "best.pt", tmp_path / "smr_bundle", frames=2)
    assert smr_bundle.mask is None and smr_bundle.coarse.tensor.shape == (1, 1, 8, 8)
    for exported in (bundle, smr_bundle):
        assert_heatmap_is_the_refined_map(exported, val, refined)
    assert bundle.training["walk"] == {"steps": 8, "radius": config.affinity_radius,
                                       "beta": config.affinity_beta, "pool": 1}  # fmt: skip
    # the walk is an export setting; a shorter one is a different map
    short, _ = export_bundle(out / "smr" / "best.pt", tmp_path / "short", frames=2, walk_steps=2,
                             walk_radius=2)  # fmt: skip
    assert short.training["walk"]["steps"] == 2
    assert "walked 2 steps (radius 2" in short.heatmap.meaning
    feed = model_inputs(val.table, short, 0)
    walked = OnnxRuntimeBackend(short, use_gpu=False).run(feed)["heatmap"][0, 0]
    assert np.abs(walked - refined[0]).max() > 1e-3
    # the robot's cheap form: the walk on the grid pooled 2x, a map of half the side
    pooled, _ = export_bundle(out / "smr" / "best.pt", tmp_path / "pooled", frames=2, walk_pool=2)
    side = bundle.heatmap.tensor.shape[-1]
    assert pooled.heatmap.tensor.shape == (1, 1, side // 2, side // 2)
    assert pooled.training["walk"]["pool"] == 2 and "pooled 2x" in pooled.heatmap.meaning
    # an SPS checkpoint from before SPS carried the SMR head is refused with the remedy
    old = torch.load(out / "best.pt", weights_only=False)
    del old["affinity"]
    torch.save(old, tmp_path / "old_sps.pt")
    with pytest.raises(ValueError, match="without the SMR head.*delete OUT/sps"):
        export_bundle(tmp_path / "old_sps.pt", tmp_path / "old_bundle", frames=2)


def assert_heatmap_is_the_refined_map(bundle, val, refined):
    """The exported heatmap (ONNX Runtime) == training's refined map on val frames, in [0, 1];
    the graph is static, opset 17, without Loop or Scan, and TensorRT 10.3 clean."""
    assert bundle.heatmap.values == "probability" and bundle.heatmap.tensor.shape == (1, 1, 32, 32)
    assert "SMR's refined map" in bundle.heatmap.meaning
    model_bytes = bundle.onnx_path.read_bytes()
    assert tensorrt_problems(model_bytes) == []
    operators = {node.op_type for node in onnx.load_from_string(model_bytes).graph.node}
    assert not {"Loop", "Scan", "If"} & operators
    backend = OnnxRuntimeBackend(bundle, use_gpu=False)
    for i in range(4):
        heatmap = backend.run(model_inputs(val.table, bundle, i))["heatmap"][0, 0]
        assert heatmap.min() == 0.0 and heatmap.max() == pytest.approx(1.0)
        np.testing.assert_allclose(heatmap, refined[i], atol=1e-4)


def test_a_missing_coarse_checkpoint_is_refused(fast_config, tmp_path):
    config = replace(fast_config, method="ier+uspl",
                     coarse_checkpoint=str(tmp_path / "runs" / "ier" / "best.pt"))  # fmt: skip
    with pytest.raises(FileNotFoundError, match="train that run first"):
        run_uspl(config)


@pytest.mark.parametrize(
    ("setting", "message"),
    [("mask_mode=blur", "mask_mode must be one of"), ("mask_fraction=1.5", "mask_fraction"),
     ("affinity_radius=0", "affinity_radius"), ("pseudo_mask_band=0.7", "pseudo_mask_band"),
     ("pseudo_mask_threshold=1", "pseudo_mask_threshold"),
     ("pair_offsets=500", "pair_offsets must be between 1 and 220"),
     ("affinity_bg_threshold=0.9", "affinity_bg_threshold < affinity_fg_threshold")],
)  # fmt: skip
def test_bad_sounding_pixel_settings_are_refused_at_load(tmp_path, capsys, setting, message):
    config = tmp_path / "uspl.yaml"
    config.write_text(
        f"data: {{source: synthav:{tmp_path}/none}}\nout_dir: {tmp_path}/run\nmethod: uspl\n"
    )
    assert train_main([str(config), "--set", setting]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
