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


SCORE_ROWS = 1 << 16
"""Calls scored by the forest at a time: the imputer and the scaler each copy what they
are given, so a whole 10M-record run's 715k calls at once held four copies of the
matrix (350 MB); the scores are the same a row at a time."""


def aligned(feats: Features, names: list[str],
            rows: np.ndarray | slice | None = None) -> np.ndarray:
    """``feats.X`` (its ``rows``, default all) with the columns ``names``, selected by
    name; NaN for ones it lacks (the imputer fills them with the training median)."""
    pos = {n: i for i, n in enumerate(feats.names)}
    X = feats.X if rows is None else feats.X[rows]
    out = np.full((len(X), len(names)), np.nan)
    for j, n in enumerate(names):
        if n in pos:
            out[:, j] = X[:, pos[n]]
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
    from the columns ``names`` the model was trained on. Scored :data:`SCORE_ROWS`
    calls at a time, once: an outlier is what ``model.predict`` calls one, a score below
    the forest's ``offset_`` (``predict`` scored every call a second time to say so)."""
    n = len(feats.X)
    scores = np.empty(n)
    offset = model[-1].offset_
    for a in range(0, n, SCORE_ROWS):
        mat = aligned(feats, names, slice(a, a + SCORE_ROWS))
        mat[~np.isfinite(mat)] = np.nan
        scores[a:a + SCORE_ROWS] = model.score_samples(mat)
    return scores, scores - offset < 0
