"""PCA plane of posterior means: orthonormal components, round trips, and signs that follow the previous fit."""

import numpy as np

from engine.projection import PCAPlane


def test_plane_is_orthonormal_and_round_trips_in_plane_points():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1, (500, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    p = PCAPlane.fit(z)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(2), atol=1e-12)
    assert p.explained[0] > p.explained[1] > 0 and p.explained.sum() < 1
    xy = rng.normal(0, 1, (10, 2))
    np.testing.assert_allclose(p.to_plane(p.from_plane(xy)), xy, atol=1e-10)


def test_signs_follow_the_previous_plane_so_the_picture_does_not_mirror():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, (800, 5)) * np.array([4.0, 2.0, 1.0, 0.5, 0.3])
    # PC1 ≈ e1 with its first coordinate near 0 after a small rotation: the fixed sign rule alone can flip it
    flips_without, flips_with = 0, 0
    prev_free, prev_like = PCAPlane.fit(base), PCAPlane.fit(base)
    for k in range(1, 40):
        theta = 0.02 * k
        rot = np.eye(5)
        rot[0, 0], rot[0, 1], rot[1, 0], rot[1, 1] = np.cos(theta), -np.sin(theta), np.sin(theta), np.cos(theta)
        z = (base + rng.normal(0, 0.01, base.shape)) @ rot.T @ np.roll(np.eye(5), 1, axis=0)  # drift into dim 0
        free, follow = PCAPlane.fit(z), PCAPlane.fit(z, like=prev_like)
        flips_without += int((np.sum(free.components * prev_free.components, axis=1) < 0).any())
        flips_with += int((np.sum(follow.components * prev_like.components, axis=1) < 0).any())
        prev_free, prev_like = free, follow
    assert flips_with == 0
    assert flips_without > 0  # the case the option is for


def test_sigma_ellipse_is_q_ellipse_in_2d_and_the_projected_covariance_on_a_plane():
    from engine.posterior import q_ellipse
    from engine.projection import sigma_ellipse

    mu, lv = np.array([0.5, -1.0]), np.log(np.array([0.04, 0.25]))
    e = sigma_ellipse(None, mu, lv)
    q = q_ellipse(mu, lv, 1.0)
    assert e.shape == q.shape
    # the same closed curve: every point of one lies on the other (x/σ₁)² + (y/σ₂)² = 1
    for pts in (e, q):
        np.testing.assert_allclose(((pts - mu) ** 2 / np.exp(lv)).sum(1), 1.0, atol=1e-9)
    rng = np.random.default_rng(0)
    plane = PCAPlane.fit(rng.standard_normal((200, 4)) * [3, 2, 1, 0.5])
    mu4, lv4 = rng.standard_normal(4), rng.standard_normal(4)
    pts = sigma_ellipse(plane, mu4, lv4, k=2.0) - plane.to_plane(mu4[None])
    cov = plane.components @ np.diag(np.exp(lv4)) @ plane.components.T
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", pts, np.linalg.inv(cov), pts), 4.0, atol=1e-9)


def test_plane_is_the_two_largest_principal_axes_with_their_variance_shares():
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))  # a random rotation: the true axes are its columns
    sd = np.array([3.0, 2.0, 1.0, 0.5, 0.25])
    z = (rng.normal(size=(20_000, 5)) * sd) @ q.T + 4.0
    plane = PCAPlane.fit(z)
    np.testing.assert_allclose(np.abs(plane.components @ q[:, :2]), np.eye(2), atol=0.02)
    np.testing.assert_allclose(plane.explained, sd[:2] ** 2 / np.sum(sd**2), atol=0.01)
    np.testing.assert_allclose(plane.mean, z.mean(0))
