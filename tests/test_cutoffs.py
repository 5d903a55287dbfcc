import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.optimize import brentq
from scipy.special import expit, logit
from scipy.stats import norm, skewnorm

from sk_zerror import Cutoff, gaussian_cutoff, skewnorm_cutoff
from sk_zerror._cutoffs import _density_crossings

# ---------------------------------------------------------------------------
# The note's code listing 4, transcribed line for line (only the typesetting
# typos fixed), as the reference our functions must reproduce.
# ---------------------------------------------------------------------------


def listing_inlier_mask(logits, labels, threshold=2.0):
    mask = torch.zeros_like(logits, dtype=torch.bool)
    for cls in [0, 1]:
        idx = (labels == cls).nonzero(as_tuple=True)[0]
        if len(idx) == 0:
            continue
        class_logits = logits[idx]
        mean = class_logits.mean()
        std = class_logits.std(unbiased=True)
        if std < 1e-8:
            std = 1.0
        z_scores = ((class_logits - mean) / std).abs()
        mask[idx] = z_scores <= threshold
    return mask


def listing_gaussian(logits, labels, z_threshold=2.0):
    mask = listing_inlier_mask(logits, labels, threshold=z_threshold)
    logits_inlier, labels_inlier = logits[mask], labels[mask]
    logits_0 = logits_inlier[labels_inlier == 0].cpu().numpy()
    logits_1 = logits_inlier[labels_inlier == 1].cpu().numpy()
    mu0, std0 = logits_0.mean(), logits_0.std()
    mu1, std1 = logits_1.mean(), logits_1.std()
    a = 1 / (2 * std0**2) - 1 / (2 * std1**2)
    b = mu1 / (std1**2) - mu0 / (std0**2)
    c = (mu0**2) / (2 * std0**2) - (mu1**2) / (2 * std1**2) - np.log(std1 / std0)
    roots = np.roots([a, b, c])
    cutoffs = np.real(roots[np.isreal(roots)])
    chosen_cutoff = cutoffs[np.argmin(np.abs(cutoffs - (mu0 + mu1) / 2))]
    return chosen_cutoff, 1 / (1 + np.exp(-chosen_cutoff))


def listing_skewnorm(logits, labels, z_threshold=2.0):
    probs = torch.sigmoid(logits)
    mask = listing_inlier_mask(probs, labels, threshold=z_threshold)
    probs_inlier, labels_inlier = probs[mask], labels[mask]
    probs_0 = probs_inlier[labels_inlier == 0].cpu().numpy()
    probs_1 = probs_inlier[labels_inlier == 1].cpu().numpy()
    skew0 = skewnorm.fit(probs_0)
    skew1 = skewnorm.fit(probs_1)
    try:
        return brentq(
            lambda x: skewnorm.pdf(x, *skew0) - skewnorm.pdf(x, *skew1), 0.001, 0.999
        )
    except ValueError:
        return (probs_0.mean() + probs_1.mean()) / 2


def listing_data():
    """The listing's ``__main__`` data: numpy's legacy stream seeded with 42."""
    n = 1000
    rng = np.random.RandomState(42)
    logits_0 = rng.normal(loc=-2.0, scale=1.0, size=n)
    logits_1 = rng.normal(loc=2.0, scale=1.0, size=n)
    logits_all = np.concatenate([logits_0, logits_1])
    labels_all = np.array([0] * n + [1] * n)
    indices = np.arange(2 * n)
    rng.shuffle(indices)
    return logits_all[indices], labels_all[indices]


def test_listing_example_printed_values():
    """The listing as published (float32 tensors): our cutoffs print the same."""
    logits_all, labels_all = listing_data()
    logits = torch.tensor(logits_all, dtype=torch.float32)
    labels = torch.tensor(labels_all, dtype=torch.float32)

    ref_logit, ref_prob = listing_gaussian(logits, labels, 2.0)
    ref_skew = listing_skewnorm(logits, labels, 2.0)
    logit_cutoff, prob_cutoff_gauss = gaussian_cutoff(logits, labels, sigma=2.0)
    prob_cutoff_skew = skewnorm_cutoff(torch.sigmoid(logits), labels).probability

    printed = [f"{x:.3f}" for x in (logit_cutoff, prob_cutoff_gauss, prob_cutoff_skew)]
    assert printed == [f"{x:.3f}" for x in (ref_logit, ref_prob, ref_skew)]
    assert printed == ["0.033", "0.508", "0.513"]
    # The listing computes in float32, this in float64.
    assert_allclose(logit_cutoff, ref_logit, atol=1e-6)
    assert_allclose(prob_cutoff_gauss, ref_prob, atol=1e-6)
    assert_allclose(prob_cutoff_skew, ref_skew, atol=1e-6)


def test_listing_example_exact():
    """The listing's own logic on float64 tensors: equal to 1e-10."""
    logits_all, labels_all = listing_data()
    logits = torch.tensor(logits_all, dtype=torch.float64)
    labels = torch.tensor(labels_all, dtype=torch.float64)

    ref_logit, ref_prob = listing_gaussian(logits, labels, 2.0)
    ref_skew = listing_skewnorm(logits, labels, 2.0)
    gauss = gaussian_cutoff(logits_all, labels_all, sigma=2.0)
    skew = skewnorm_cutoff(expit(logits_all), labels_all, sigma=2.0)

    assert_allclose(gauss.threshold, ref_logit, rtol=1e-10, atol=1e-10)
    assert_allclose(gauss.probability, ref_prob, rtol=1e-10, atol=1e-10)
    assert_allclose(skew.probability, ref_skew, rtol=1e-10, atol=1e-10)
    assert gauss.crossed and skew.crossed
    # Pinned as well, so a change in the reference cannot go unnoticed.
    assert_allclose(gauss.threshold, 0.032642461828052416, rtol=1e-10)
    assert_allclose(skew.probability, 0.51289485876, rtol=1e-8)
    assert gauss.n_inliers == {0: 956, 1: 953}


# ---------------------------------------------------------------------------
# Gaussian cutoff
# ---------------------------------------------------------------------------

# A standardised sample: every class built from it has exactly the mean and
# (ddof=0) spread asked for, and all its points are 2-sigma inliers.
Z = np.linspace(-1.5, 1.5, 31)
Z = (Z - Z.mean()) / Z.std()


def two_classes(mu0, sd0, mu1, sd1, labels=(0, 1)):
    scores = np.concatenate([mu0 + sd0 * Z, mu1 + sd1 * Z])
    y = np.repeat(np.asarray(labels), Z.size)
    return scores, y


def crossings(mu0, sd0, mu1, sd1):
    """Closed form of the two points where N(mu0, sd0) and N(mu1, sd1) cross."""
    var0, var1 = sd0**2, sd1**2
    spread = (
        sd0 * sd1 * np.sqrt((mu1 - mu0) ** 2 + 2 * (var1 - var0) * np.log(sd1 / sd0))
    )
    return (mu0 * var1 - mu1 * var0 + np.array([-1, 1]) * spread) / (var1 - var0)


def test_gaussian_equal_variances_cut_at_midpoint():
    scores, y = two_classes(-1.0, 0.7, 3.0, 0.7)
    cutoff = gaussian_cutoff(scores, y)
    assert_allclose(cutoff.threshold, 1.0, rtol=1e-12)
    assert_allclose(cutoff.probability, expit(1.0), rtol=1e-12)
    assert cutoff.crossed
    assert cutoff.n_inliers == {0: Z.size, 1: Z.size}


@pytest.mark.parametrize(
    ("mu0", "sd0", "mu1", "sd1"),
    [(-2.0, 1.0, 2.0, 2.0), (-2.0, 2.0, 2.0, 1.0), (0.0, 0.3, 1.0, 0.6)],
)
def test_gaussian_unequal_variances_analytic(mu0, sd0, mu1, sd1):
    scores, y = two_classes(mu0, sd0, mu1, sd1)
    cutoff = gaussian_cutoff(scores, y)

    # The crossing between the means is kept.
    roots = crossings(mu0, sd0, mu1, sd1)
    between = roots[(roots > mu0) & (roots < mu1)]
    assert between.size == 1
    assert_allclose(cutoff.threshold, between[0], rtol=1e-10)
    assert_allclose(
        norm.pdf(cutoff.threshold, mu0, sd0),
        norm.pdf(cutoff.threshold, mu1, sd1),
        rtol=1e-10,
    )
    assert_allclose(cutoff.distributions[0].mean(), mu0, atol=1e-12)
    assert_allclose(cutoff.distributions[1].std(), sd1, rtol=1e-12)


def test_gaussian_no_root_between_means_keeps_nearest_to_midpoint():
    # The narrow class's density is the higher at both means: both crossings
    # lie outside [mu0, mu1], and the one nearest the midpoint is kept.
    mu0, sd0, mu1, sd1 = 0.0, 0.1, 0.1, 10.0
    cutoff = gaussian_cutoff(*two_classes(mu0, sd0, mu1, sd1))
    assert cutoff.crossed
    assert not mu0 < cutoff.threshold < mu1
    assert_allclose(
        norm.pdf(cutoff.threshold, mu0, sd0),
        norm.pdf(cutoff.threshold, mu1, sd1),
        rtol=1e-9,
    )
    # -0.3035 and 0.3035: the second is nearer the midpoint 0.05.
    assert_allclose(cutoff.threshold, crossings(mu0, sd0, mu1, sd1)[1], rtol=1e-10)


@pytest.mark.parametrize(
    "scores",
    [
        # Identical classes: the densities coincide and never cross.
        np.concatenate([Z, Z]),
        # No spread in the negative class: no Gaussian to cross.
        np.concatenate([np.full(Z.size, -1.0), 2.0 + Z]),
    ],
)
def test_gaussian_fallback_to_midpoint(scores):
    y = np.repeat([0, 1], Z.size)
    cutoff = gaussian_cutoff(scores, y)
    assert not cutoff.crossed
    expected = (scores[y == 0].mean() + scores[y == 1].mean()) / 2
    assert_allclose(cutoff.threshold, expected, atol=1e-12)


def test_cutoff_unpacks_as_threshold_and_probability():
    cutoff = gaussian_cutoff(*two_classes(-1.0, 1.0, 2.0, 1.5))
    assert isinstance(cutoff, Cutoff)
    threshold, probability = cutoff
    assert threshold == cutoff.threshold
    assert probability == cutoff.probability == expit(threshold)
    assert cutoff.method == "gaussian"


def test_gaussian_pos_label_and_string_labels():
    scores, y = two_classes(-1.0, 1.0, 2.0, 1.5)
    reference = gaussian_cutoff(scores, y)

    names = np.where(y == 1, "spam", "ham")
    named = gaussian_cutoff(scores, names)
    assert named.threshold == reference.threshold
    assert list(named.distributions) == ["ham", "spam"]

    # Scores of the other class, mirrored: the cutoff mirrors too.
    flipped = gaussian_cutoff(-scores, names, pos_label="ham")
    assert_allclose(flipped.threshold, -reference.threshold, rtol=1e-12)
    assert list(flipped.n_inliers) == ["spam", "ham"]


def test_gaussian_sigma_per_class():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(-2, 1, 500), rng.normal(2, 1, 500)])
    y = np.repeat([0, 1], 500)
    wide = gaussian_cutoff(scores, y, sigma=(1.0, 10.0)).n_inliers
    assert wide[0] < gaussian_cutoff(scores, y).n_inliers[0] < 500
    assert wide[1] == 500


def test_gaussian_accepts_column_and_tensor_inputs():
    scores, y = two_classes(-1.0, 1.0, 2.0, 1.5)
    reference = gaussian_cutoff(scores, y).threshold
    assert gaussian_cutoff(scores[:, None], y[:, None]).threshold == reference
    assert gaussian_cutoff(torch.from_numpy(scores), torch.from_numpy(y)).threshold == (
        reference
    )


def test_too_few_inliers_names_the_class():
    scores = np.array([-2.0, -1.0, -1.5, 3.0])
    y = np.array(["a", "a", "a", "b"])
    with pytest.raises(ValueError, match="Class 'b' has 1 inlier"):
        gaussian_cutoff(scores, y)
    with pytest.raises(ValueError, match="Class 'b' has 1 inlier.*skew-normal"):
        skewnorm_cutoff(expit(scores), y)


def test_non_finite_scores_are_outliers():
    scores, y = two_classes(-1.0, 1.0, 2.0, 1.5)
    reference = gaussian_cutoff(scores, y)
    cutoff = gaussian_cutoff(np.append(scores, [np.nan, np.inf]), np.append(y, [0, 1]))
    assert cutoff.threshold == reference.threshold


@pytest.mark.parametrize("function", [gaussian_cutoff, skewnorm_cutoff])
def test_input_errors(function):
    p = np.linspace(0.1, 0.9, 9)
    with pytest.raises(ValueError, match="binary: y must hold exactly two classes"):
        function(p, np.arange(9) % 3)
    with pytest.raises(ValueError, match="got 1"):
        function(p, np.zeros(9))
    with pytest.raises(ValueError, match="pos_label=2 is not one of the classes"):
        function(p, np.arange(9) % 2, pos_label=2)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        function(p, np.arange(8) % 2)
    with pytest.raises(ValueError, match="1-D"):
        function(np.ones((9, 2)), np.arange(9) % 2)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        function(p, np.arange(9) % 2, sigma=0.0)


# ---------------------------------------------------------------------------
# Skew-normal cutoff
# ---------------------------------------------------------------------------


@pytest.fixture
def skewed_probabilities():
    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.normal(-2.5, 1.0, 800), rng.normal(1.5, 1.2, 400)])
    return expit(logits), np.repeat([0, 1], [800, 400])


def test_skewnorm_root_inside_unit_interval(skewed_probabilities):
    p, y = skewed_probabilities
    cutoff = skewnorm_cutoff(p, y)
    assert cutoff.crossed
    assert cutoff.method == "skewnorm"
    low, high = (p[y == k].mean() for k in (0, 1))
    assert 0 < low < cutoff.probability < high < 1
    dist0, dist1 = cutoff.distributions.values()
    assert_allclose(dist0.pdf(cutoff.probability), dist1.pdf(cutoff.probability))
    assert_allclose(cutoff.threshold, logit(cutoff.probability), rtol=1e-12)
    # The sigmoid skews each class away from its confident end.
    assert dist0.args[0] > 0 > dist1.args[0]


def test_skewnorm_fallback_to_midpoint_when_densities_coincide():
    p = expit(np.random.default_rng(0).normal(0.0, 1.0, 60))
    y = np.repeat([0, 1], 60)
    cutoff = skewnorm_cutoff(np.concatenate([p, p]), y)
    assert not cutoff.crossed
    inliers = p[np.abs(p - p.mean()) <= 2 * p.std(ddof=1)]
    assert_allclose(cutoff.probability, inliers.mean(), rtol=1e-12)


def test_skewnorm_fallback_when_a_class_has_no_spread():
    p = np.concatenate([np.full(10, 0.2), np.linspace(0.5, 0.9, 10)])
    y = np.repeat([0, 1], 10)
    cutoff = skewnorm_cutoff(p, y)
    assert not cutoff.crossed
    assert_allclose(cutoff.probability, (0.2 + 0.7) / 2, rtol=1e-12)
    assert cutoff.distributions[0].args == (0.0, 0.2, 0.0)
    assert cutoff.distributions[1].std() > 0


def test_density_crossings_only_inside_unit_interval():
    # Same centre, scales 0.5 and 5: they cross at 0.5 +- 1.08, outside (0, 1).
    narrow, wide = skewnorm(0.0, loc=0.5, scale=0.5), skewnorm(0.0, loc=0.5, scale=5)
    assert _density_crossings(narrow, wide).size == 0
    # Scales 0.1 and 5 cross at 0.5 +- 0.28, both inside.
    roots = _density_crossings(skewnorm(0.0, loc=0.5, scale=0.1), wide)
    half_width = np.sqrt(np.log(5 / 0.1) / (1 / (2 * 0.1**2) - 1 / (2 * 5**2)))
    assert_allclose(roots, 0.5 + np.array([-1, 1]) * half_width, rtol=1e-10)


def test_skewnorm_probabilities_outside_unit_interval():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        skewnorm_cutoff(np.array([-0.5, 0.2, 0.8, 1.0]), [0, 0, 1, 1])
