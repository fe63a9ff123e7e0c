import numpy as np
import pytest
from PIL import Image

from gandemo import metrics


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 4))
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    # same covariance, mean moved by 3 along one axis: FD ~ 3^2
    b = rng.normal(size=(2000, 4)) + np.array([3.0, 0, 0, 0])
    assert metrics.frechet_distance(a, b) == pytest.approx(9.0, rel=0.1)
    # same mean, twice the spread: Tr(S_a + S_b - 2 sqrt(S_a S_b)) = 4 * (1 + 4 - 4) = 4
    c = rng.normal(size=(2000, 4)) * 2
    assert metrics.frechet_distance(a, c) == pytest.approx(4.0, rel=0.15)


def test_frechet_distance_equals_the_sqrtm_formula():
    """The SVD shortcut gives exactly the textbook value (scipy's matrix square root)."""
    from scipy import linalg

    rng = np.random.default_rng(1)
    a = rng.normal(size=(60, 80)) * rng.uniform(0.5, 2, 80)  # fewer items than dimensions, as FID
    b = rng.normal(size=(75, 80)) + 0.3
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    textbook = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s_a + s_b - 2 * linalg.sqrtm(s_a @ s_b).real)
    assert metrics.frechet_distance(a, b) == pytest.approx(textbook, rel=1e-6)


def test_fid_gap_is_sure_of_a_clear_lead_and_unsure_of_none():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(200, 8))
    close, far = ref + rng.normal(0, 0.3, ref.shape), ref + rng.normal(0, 0.3, ref.shape) + 1.0
    clear = metrics.fid_gap(close, far, ref, resamples=50)
    assert clear["gap"] == pytest.approx(metrics.frechet_distance(far, ref) - metrics.frechet_distance(close, ref))
    assert 0 < clear["low"] < clear["gap"] < clear["high"] and clear["a_ahead"] == 1.0
    twin = ref + rng.normal(0, 0.3, ref.shape)
    none = metrics.fid_gap(close, twin, ref, resamples=50)
    assert none["low"] < 0 < none["high"] and 0 < none["a_ahead"] < 1
    with pytest.raises(ValueError, match="paired item by item"):
        metrics.fid_gap(close[:10], far, ref)


def test_precision_and_recall_separate_realism_from_variety():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 4))
    same = rng.normal(size=(400, 4))
    p, r = metrics.precision_recall(real, same)
    assert p > 0.8 and r > 0.8
    collapsed = rng.normal(size=(400, 4)) * 0.05  # realistic but one kind only
    p, r = metrics.precision_recall(real, collapsed)
    assert p > 0.95 and r < 0.1
    far = rng.normal(size=(400, 4)) + 10  # neither
    assert metrics.precision_recall(real, far) == (0.0, 0.0)
    with pytest.raises(ValueError):
        metrics.precision_recall(real[:3], same)


def test_mean_pairwise_distance_on_known_points():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    # pairs: 5, 0, 5 -> mean 10/3
    assert metrics.mean_pairwise_distance(pts) == pytest.approx(10 / 3)
    collapsed = np.ones((50, 8))
    assert metrics.mean_pairwise_distance(collapsed) == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError):
        metrics.mean_pairwise_distance(np.ones((1, 2)))


def test_nearest_distances():
    refs = np.array([[0.0, 0.0], [10.0, 0.0]])
    q = np.array([[1.0, 0.0], [10.0, 2.0], [0.0, 0.0]])
    assert np.allclose(metrics.nearest_distances(q, refs, chunk=2), [1.0, 2.0, 0.0], atol=1e-3)


def test_face_detector_finds_nothing_in_flat_or_noise_images():
    flat = Image.new("RGB", (64, 64), (128, 100, 90))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert metrics.face_found([flat, noise]).tolist() == [False, False]


def test_psnr_and_ssim():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    noisy = np.clip(a.astype(int) + rng.integers(-8, 9, a.shape), 0, 255).astype(np.uint8)
    mse = ((a.astype(float) - noisy) ** 2).reshape(3, -1).mean(1)
    assert np.allclose(metrics.psnr(a, noisy), 10 * np.log10(255**2 / mse))
    assert np.isinf(metrics.psnr(a, a)).all()
    s_same, s_noisy = metrics.ssim(a, a), metrics.ssim(a, noisy)
    assert s_same.shape == (3,) and np.allclose(s_same, 1)
    assert (s_noisy < 1).all() and (s_noisy > metrics.ssim(a, 255 - a)).all()
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        metrics.psnr(a[0], noisy[0])
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.ssim(a, noisy[:2])


# ---- the super-resolution protocol ------------------------------------------------------------------
def test_rgb_to_y_is_matlabs_rgb2ycbcr_luma():
    y = metrics.rgb_to_y(np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]))
    assert np.allclose(y, [16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966])
    grey = np.full((12, 12), 128, np.uint8)  # an (H, W) image is R = G = B
    assert metrics.mse_y(grey, np.zeros_like(grey), border=2) == pytest.approx((128 * 219 / 255) ** 2)


def test_psnr_y_of_a_known_offset_and_identical_images():
    rng = np.random.default_rng(0)
    hr = rng.integers(20, 200, (40, 30, 3)).astype(np.uint8)
    sr = hr + np.uint8(5)  # every channel +5: Y moves by 5 * 219 / 255
    assert metrics.psnr_y(sr, hr) == pytest.approx(20 * np.log10(255 / (5 * 219 / 255)))
    assert metrics.mse_y(sr, hr) == pytest.approx((5 * 219 / 255) ** 2)
    assert metrics.psnr_y(hr, hr) == float("inf")
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr_y(hr[:-1], hr)


def test_the_border_is_shaved_before_measuring():
    hr = np.full((32, 32, 3), 100, np.uint8)
    sr = hr.copy()
    sr[:4] = 0  # wrong only in the 4-px top border
    sr[:, -4:] = 255  # ... and the right one
    assert metrics.psnr_y(sr, hr, border=4) == float("inf")
    assert metrics.ssim_y(sr, hr, border=4) == pytest.approx(1.0)
    assert metrics.psnr_y(sr, hr, border=0) < 20
    with pytest.raises(ValueError, match="nothing left"):
        metrics.psnr_y(hr[:8, :8], hr[:8, :8], border=4)


def test_ssim_y_is_one_for_identical_images_and_drops_with_noise():
    rng = np.random.default_rng(1)
    hr = np.repeat(np.linspace(30, 220, 40)[None, :, None], 48, axis=0).repeat(3, axis=2).astype(np.uint8)
    noisy = np.clip(hr + rng.normal(0, 20, hr.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim_y(hr, hr) == pytest.approx(1.0)
    assert 0 < metrics.ssim_y(noisy, hr) < 0.7


def test_bicubic_downscale_crops_to_the_scale_and_keeps_a_ramp_a_ramp():
    x = np.arange(64, dtype=np.float64)
    ramp = np.repeat(np.repeat((40 + 2 * x)[None, :, None], 3, axis=2), 34, axis=0).astype(np.uint8)  # 34x64
    lr = metrics.bicubic_downscale(ramp)
    assert metrics.modcrop(ramp).shape == (32, 64, 3) and lr.shape == (8, 16, 3)
    # output pixel j is centred on input x = 4j + 1.5; bicubic reproduces a linear function there
    assert np.abs(lr[4, 2:-2, 0].astype(float) - (40 + 2 * (4 * np.arange(2, 14) + 1.5))).max() <= 1
    flat = np.full((21, 18, 3), 77, np.uint8)
    assert (metrics.bicubic_downscale(flat) == 77).all() and metrics.bicubic_downscale(flat).shape == (5, 4, 3)


def test_detail_ratio_is_one_for_the_original_and_below_for_blur():
    rng = np.random.default_rng(2)
    hr = rng.integers(0, 256, (40, 40, 3)).astype(np.uint8)
    blurred = np.asarray(Image.fromarray(hr).resize((10, 10), Image.Resampling.BICUBIC).resize((40, 40)))
    assert metrics.detail_ratio(hr, hr) == pytest.approx(1.0)
    assert metrics.detail_ratio(blurred, hr) < 0.3


def test_auroc_on_known_cases():
    assert metrics.auroc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.auroc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert metrics.auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5  # ties count half
    # 4 positive-negative pairs: (0.35 > 0.1), (0.35 < 0.4), (0.8 > both) -> 3 of 4
    assert metrics.auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # pixel AUROC: masks and heatmaps of any shape are flattened together
    masks = np.zeros((2, 4, 4), bool)
    masks[0, 1:3, 1:3] = True
    heat = masks.astype(float) + 0.1
    assert metrics.auroc(masks, heat) == 1.0


def test_auroc_needs_both_classes_and_matching_finite_scores():
    with pytest.raises(ValueError, match="both positives and negatives"):
        metrics.auroc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="differ in size"):
        metrics.auroc([0, 1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="finite"):
        metrics.auroc([0, 1], [0.2, float("nan")])


# ---- Edges → Photo: colour and the checkerboard --------------------------------------------------------
def test_lab_round_trip_and_delta_e_of_known_colours():
    rgb = np.array([[255, 255, 255], [0, 0, 0], [178, 34, 34], [26, 58, 139]], np.uint8)
    lab = metrics.rgb_to_lab(rgb)
    assert lab[0] == pytest.approx([100, 0, 0], abs=0.5) and lab[1] == pytest.approx([0, 0, 0], abs=0.5)
    assert np.abs(metrics.lab_to_rgb(lab).astype(int) - rgb).max() <= 1
    assert metrics.delta_e(rgb, rgb) == pytest.approx(np.zeros(4), abs=1e-9)
    assert metrics.delta_e(rgb[0], rgb[1]) == pytest.approx(100, abs=0.5)  # white to black: L* alone
    assert 2 < metrics.delta_e(np.array([178, 34, 34]), np.array([178, 34, 38])) < 5  # a small step is small


def test_checkerboard_sees_a_period_2_pattern_whatever_the_content():
    rng = np.random.default_rng(0)
    smooth = np.repeat(np.repeat(rng.integers(0, 255, (8, 16, 16, 3)), 8, axis=1), 8, axis=2).astype(np.uint8)
    board = (np.indices((128, 128)).sum(0) % 2 * 2 - 1)[None, :, :, None] * 3.0  # ±3 grey levels
    printed = np.clip(smooth + board, 0, 255).astype(np.uint8)
    plain, found = metrics.checkerboard(smooth), metrics.checkerboard(printed)
    assert plain.shape == (8,) and (plain < 0.05).all()  # 8x8 blocks have no period-2 part
    assert found == pytest.approx(np.full(8, 3.0), abs=0.3)  # the pattern's amplitude, in grey levels
    assert metrics.checkerboard(printed[..., 0]) == pytest.approx(found, abs=0.3)  # greyscale too
    noise = rng.normal(128, 20, (64, 128, 128, 3)).clip(0, 255).astype(np.uint8)  # a flat spectrum
    assert 0.6 < metrics.nyquist_spike(noise) < 1.5  # 1 up to the scatter of 64 images' bins
    assert metrics.nyquist_spike(np.clip(noise + board, 0, 255).astype(np.uint8)) > 5


def test_texture_is_zero_on_flat_shapes_and_counts_only_the_mask():
    flat = np.full((1, 64, 64, 3), 90, np.uint8)
    stripes = flat.copy()
    stripes[0, :, ::4] = 200
    assert metrics.texture(flat) == pytest.approx([0.0], abs=1e-4)
    assert metrics.texture(stripes)[0] > 10
    mask = np.zeros((1, 64, 64), bool)
    mask[0, :, :32] = True
    half = stripes.copy()
    half[0, :, 32:] = 90  # stripes only inside the mask
    assert metrics.texture(half, mask)[0] == pytest.approx(metrics.texture(stripes, mask)[0], rel=0.2)
    assert metrics.texture(half, ~mask)[0] < 0.1 * metrics.texture(half, mask)[0]  # the blur's reach at the seam
    assert metrics.texture(np.full((1, 64, 64, 3), 90, np.uint8), mask)[0] == pytest.approx(0.0, abs=1e-4)


def test_mean_iou_is_the_overlap_of_masks_over_images_with_a_defect():
    from gandemo.metrics import mean_iou

    truth = [np.zeros((4, 4), bool), np.zeros((4, 4), bool), np.zeros((4, 4), bool)]
    truth[1][0, :] = True  # 4 defect pixels
    truth[2][:, 0] = True
    pred = [np.ones((4, 4), bool), np.zeros((4, 4), bool), np.zeros((4, 4), bool)]
    pred[1][0, :2] = True  # half of the defect, nothing else: 2 / 4
    pred[2][:2, :2] = True  # 2 of the 4 defect pixels and 2 others: 2 / 6
    assert mean_iou(pred, truth) == pytest.approx((2 / 4 + 2 / 6) / 2)  # the image without a defect is left out
    with pytest.raises(ValueError, match="no image has a non-empty true mask"):
        mean_iou(pred[:1], truth[:1])
