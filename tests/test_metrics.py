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
