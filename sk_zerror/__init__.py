"""Scikit-learn estimators trained with the Z-Error Loss.

The Z-Error Loss leaves out of each batch's loss the samples whose error (or,
in classification, whose given-class logit) lies more than ``sigma`` standard
deviations from the batch centre, so the network forgets data errors instead
of learning them.
"""

# The public names are imported on first use (PEP 562), so that the
# ``sk-zerror`` command can parse its arguments, and answer ``--help``,
# without importing torch, scipy and scikit-learn. To add a public name, add
# it to ``_LAZY`` with the private module that defines it.
import importlib

__version__ = "0.1.0.dev0"

# Public name -> the private module that defines it.
_LAZY = {
    "Cutoff": "._cutoffs",
    "LabelOutlierResult": "._outliers",
    "OutlierResult": "._outliers",
    "SigmaScheduler": "._schedule",
    "ZErrorBCEWithLogitsLoss": "._losses",
    "ZErrorClassifier": "._classifier",
    "ZErrorCrossEntropyLoss": "._losses",
    "ZErrorMSELoss": "._losses",
    "ZErrorOutput": "._losses",
    "ZErrorRegressor": "._regressor",
    "ZThresholdCalibrator": "._threshold",
    "find_label_outliers": "._outliers",
    "find_outliers": "._outliers",
    "gaussian_cutoff": "._cutoffs",
    "make_trimmed_scorer": "._scoring",
    "sigma_at_epoch": "._schedule",
    "skewnorm_cutoff": "._cutoffs",
    "trimmed_accuracy_score": "._scoring",
    "trimmed_log_loss": "._scoring",
    "trimmed_mean_squared_error": "._scoring",
    "zscore_mask": "._zscore",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
