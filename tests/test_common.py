"""scikit-learn's common estimator checks, for every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_zerror import ZErrorClassifier, ZErrorRegressor

# Each expected failure says why it cannot hold for a network trained by
# mini-batch SGD in float32; everything else must pass.
FLOAT32_SUBSETS = (
    "float32 network: BLAS uses different kernels for different numbers of "
    "rows, so a row's output differs by ~1e-7 relative between a batch and a "
    "subset, which is the check's own tolerance."
)
SGD_WEIGHTS = (
    "mini-batch SGD: a weight of 2 and a duplicated row put different samples "
    "in each batch, so they are equivalent in expectation only."
)


def expected_failed_checks(estimator):
    return {
        "check_methods_subset_invariance": FLOAT32_SUBSETS,
        "check_sample_weight_equivalence_on_dense_data": SGD_WEIGHTS,
    }


@parametrize_with_checks(
    [
        ZErrorRegressor(max_epochs=30, random_state=0),
        ZErrorClassifier(max_epochs=30, random_state=0),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
