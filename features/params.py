"""scikit-learn's estimator protocol without importing scikit-learn, for
:class:`features.anomaly.SlowdownDetector`. Apart from the detector because nothing here is
about slowdowns: it is the contract ``sklearn.base.clone``, searches and pipelines expect.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["Params", "check_fitted"]


class Params:
    """scikit-learn's parameter protocol (``get_params``, ``set_params``, the repr) without
    importing scikit-learn: that import takes 1-2 s, and every report, ``steer RUN`` and
    the app make a detector, while only fitting the multivariate forest needs the library.
    ``sklearn.base.clone`` takes it as it takes a ``BaseEstimator``."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (``deep``: with those of nested estimators as
        ``name__param``)."""
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Params:
        """Set parameters (``name__param`` reaches a nested estimator); returns ``self``."""
        names = self._param_names()
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in names:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}: "
                                 f"choose from {', '.join(names)}")
            if sub:
                getattr(self, name).set_params(**{sub: value})
            else:
                setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items()
                   if defaults.get(k, inspect.Parameter.empty) != v]
        return f"{type(self).__name__}({', '.join(changed)})"


def check_fitted(estimator: object, attribute: str) -> None:
    """Raise scikit-learn's ``NotFittedError`` when ``estimator`` has not learned
    ``attribute`` yet: its estimator methods (``predict``, ``score_samples``) do so before
    ``fit``, and callers catch that error by its class."""
    if not hasattr(estimator, attribute):
        from sklearn.exceptions import NotFittedError  # only on this error path

        raise NotFittedError(f"This {type(estimator).__name__} instance is not fitted yet. "
                             "Call 'fit' with appropriate arguments before using this "
                             "estimator.")
