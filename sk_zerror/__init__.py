"""Scikit-learn estimators trained with the Z-Error Loss.

The Z-Error Loss leaves out of each batch's loss the samples whose error (or,
in classification, whose given-class logit) lies more than ``sigma`` standard
deviations from the batch centre, so the network forgets data errors instead
of learning them.
"""

from ._classifier import ZErrorClassifier
from ._cutoffs import Cutoff, gaussian_cutoff, skewnorm_cutoff
from ._losses import ZErrorBCEWithLogitsLoss, ZErrorCrossEntropyLoss, ZErrorMSELoss
from ._outliers import OutlierResult, find_label_outliers, find_outliers
from ._regressor import ZErrorRegressor
from ._schedule import SigmaScheduler, sigma_at_epoch
from ._threshold import ZThresholdCalibrator
from ._zscore import zscore_mask

__version__ = "0.1.0.dev0"

__all__ = [
    "Cutoff",
    "OutlierResult",
    "SigmaScheduler",
    "ZErrorBCEWithLogitsLoss",
    "ZErrorClassifier",
    "ZErrorCrossEntropyLoss",
    "ZErrorMSELoss",
    "ZErrorRegressor",
    "ZThresholdCalibrator",
    "__version__",
    "find_label_outliers",
    "find_outliers",
    "gaussian_cutoff",
    "sigma_at_epoch",
    "skewnorm_cutoff",
    "zscore_mask",
]
