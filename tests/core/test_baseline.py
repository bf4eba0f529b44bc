"""The supervised baseline: scikit-learn's logistic regression, fitted on exactly the labelled images."""

import numpy as np
from sklearn.linear_model import LogisticRegression  # installed with mlxtend; the independent reference

from adgm_core.baseline import fingerprint, fit_logistic_regression, predict, supervised_baseline
from adgm_core.data import load_builtin, semi_supervised_split


def test_it_is_scikit_learns_logistic_regression():
    train, test = load_builtin("digits5k")
    split = semi_supervised_split(train, 10, 0)
    ours = predict(fit_logistic_regression(split.labelled_images, split.labelled_labels, 10), test.images)
    x = lambda images: images.reshape(len(images), -1) / 255.0  # noqa: E731
    reference = LogisticRegression(C=1.0, max_iter=2000).fit(x(split.labelled_images), split.labelled_labels)
    theirs = reference.predict(x(test.images))
    assert (ours == theirs).mean() > 0.98
    assert abs((ours == test.labels).mean() - (theirs == test.labels).mean()) < 0.01


def test_it_sees_only_the_labelled_images_and_says_which():
    train, test = load_builtin("digits5k")
    split = semi_supervised_split(train, 5, 1)
    baseline = supervised_baseline(split, test)
    assert baseline.n_labelled == 50 and baseline.kind == "logistic_regression"
    assert baseline.labelled_fingerprint == fingerprint(split.labelled_images, split.labelled_labels)
    assert supervised_baseline(split, test) == baseline  # convex, from zero: the same labels, the same figure
    other = semi_supervised_split(train, 5, 2)
    assert supervised_baseline(other, test).labelled_fingerprint != baseline.labelled_fingerprint
    assert supervised_baseline(split, None).test_accuracy is None
    shuffled_labels = np.roll(split.labelled_labels, 1)
    assert fingerprint(split.labelled_images, shuffled_labels) != baseline.labelled_fingerprint
