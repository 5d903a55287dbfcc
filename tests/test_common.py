"""scikit-learn's common estimator checks, for every public estimator."""

from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_zerror import ZErrorClassifier, ZErrorRegressor, ZThresholdCalibrator

# Each expected failure says why it cannot hold for a network trained by
# mini-batch SGD in float32; everything else must pass.
SGD_WEIGHTS = (
    "mini-batch SGD: a weight of 2 and a duplicated row put different samples "
    "in each batch, so they are equivalent in expectation only."
)


CUTOFF_NOT_ZERO = (
    "predict cuts decision_function at decision_threshold_, not at 0, by design "
    "(scikit-learn's TunedThresholdClassifierCV fails this check too)."
)


ROUTED_CATCH_ALL = (
    "the check passes the name of __init__'s **routed catch-all (skorch's "
    "double-underscore parameters) as a parameter of its own, and set_params "
    "refuses it, as it refuses any unknown name; skorch's nets share this."
)


def expected_failed_checks(estimator):
    if isinstance(estimator, ZThresholdCalibrator):
        return {"check_classifiers_train": CUTOFF_NOT_ZERO}
    return {
        "check_sample_weight_equivalence_on_dense_data": SGD_WEIGHTS,
        "check_sample_weight_equivalence_on_sparse_data": SGD_WEIGHTS,
        "check_do_not_raise_errors_in_init_or_set_params": ROUTED_CATCH_ALL,
    }


@parametrize_with_checks(
    [
        ZErrorRegressor(max_epochs=30, random_state=0),
        ZErrorClassifier(max_epochs=30, random_state=0),
        ZThresholdCalibrator(LogisticRegression()),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
