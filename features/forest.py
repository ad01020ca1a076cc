"""The slowdown detector's multivariate part: the feature matrix it reads and the
``Pipeline(SimpleImputer, RobustScaler, IsolationForest)`` fitted over it.

The forest never decides (:mod:`features.anomaly` says why); it ranks calls and marks
ones that are unusual in other ways. It lives apart from the per-group baselines so the
detector reads as its decision, and so scikit-learn is imported only where a forest is
fitted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from features.featurize import ACTION_FEATURES, EXTRA_PREFIX, Features

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from features.table import Table

__all__ = ["aligned", "as_features", "fit_forest", "forest_scores"]


def as_features(X: Features | Table) -> Features:
    """``X`` as :class:`Features`: a plain features table (the rows of
    :func:`features.featurize.action_features`) gets its matrix rebuilt from its columns."""
    if isinstance(X, Features):
        return X
    base = [n for n, _ in ACTION_FEATURES]
    names = [n for n in base if n in X] + sorted(c for c in X.columns
                                                 if c.startswith(EXTRA_PREFIX))
    mat = np.column_stack([np.asarray(X[n], dtype=np.float64) for n in names]) if len(X) \
        else np.empty((0, len(names)))
    return Features(X, mat, names)


def aligned(feats: Features, names: list[str]) -> np.ndarray:
    """``feats.X`` with the columns ``names``, selected by name; NaN for ones it lacks
    (the imputer fills them with the training median)."""
    pos = {n: i for i, n in enumerate(feats.names)}
    out = np.full((len(feats.X), len(names)), np.nan)
    for j, n in enumerate(names):
        if n in pos:
            out[:, j] = feats.X[:, pos[n]]
    return out


def fit_forest(mat: np.ndarray, n_estimators: int, random_state: int) -> Pipeline:
    """The multivariate model fitted on ``mat`` (rows of calls; inf counts as missing)."""
    # Imported here: scikit-learn's estimator modules import its callback package,
    # which loads rich when it is installed; importing features must not (the layer
    # rule), and a reader that never fits a model starts faster.
    from sklearn.ensemble import IsolationForest
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import RobustScaler

    return Pipeline([
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", RobustScaler()),
        ("forest", IsolationForest(n_estimators=n_estimators, random_state=random_state)),
    ]).fit(np.where(np.isfinite(mat), mat, np.nan))


def forest_scores(model: Pipeline, feats: Features, names: list[str]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per call: the forest's score (lower: more unusual) and whether it is an outlier,
    from the columns ``names`` the model was trained on."""
    mat = aligned(feats, names)
    mat[~np.isfinite(mat)] = np.nan
    return model.score_samples(mat), model.predict(mat) == -1
