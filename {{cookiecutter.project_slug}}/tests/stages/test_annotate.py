"""annotate: label corrections by id; unknown ids and labels are errors, never skipped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.core.errors import DataError
from {{ cookiecutter.package_name }}.stages import annotate
from {{ cookiecutter.package_name }}.tables import schema


def species() -> pd.DataFrame:
    return pd.DataFrame(
        {"id": ["a", "b", "c"], "batch": ["x"] * 3, "species": ["Adelie", "Gentoo", "Adelie"]}
    )


def masses() -> pd.DataFrame:
    return pd.DataFrame(
        {"id": ["a", "b", "c"], "batch": ["x"] * 3, "mass": [3750.0, 4200.0, 3100.0]}
    )


def corrections(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [i for i, _ in pairs], "label": [label for _, label in pairs]}, dtype="string"
    )


def test_applies_class_labels_by_id():
    df = species()
    out, report = annotate.annotate(
        df, corrections(("c", "Gentoo"), ("b", "Gentoo")), "species", "classification"
    )
    assert out["species"].tolist() == ["Adelie", "Gentoo", "Gentoo"]
    assert report == {"corrections": 2, "labels_changed": 1}
    assert out["species"].dtype == df["species"].dtype
    assert df["species"].tolist() == ["Adelie", "Gentoo", "Adelie"], "input left untouched"


def test_applies_numeric_labels_for_regression():
    out, report = annotate.annotate(masses(), corrections(("b", "4250.5")), "mass", "regression")
    assert out["mass"].tolist() == [3750.0, 4250.5, 3100.0]
    assert out["mass"].dtype == "float64"
    assert report == {"corrections": 1, "labels_changed": 1}


def test_no_corrections_change_nothing():
    df = species()
    out, report = annotate.annotate(df, corrections(), "species", "classification")
    pd.testing.assert_frame_equal(out, df)
    assert report == {"corrections": 0, "labels_changed": 0}


def test_a_table_without_corrections_or_unlabelled_rows_is_not_copied():
    """No copy of the whole table to change nothing (issue 21: a wide table's copies)."""
    df = masses()
    out, _ = annotate.annotate(df, corrections(), "mass", "regression")
    labelled, unlabelled = annotate.split_labelled(out, "mass")
    assert np.shares_memory(labelled["mass"].to_numpy(), df["mass"].to_numpy())
    pd.testing.assert_frame_equal(labelled, df)
    assert unlabelled.empty and list(unlabelled.columns) == list(df.columns)


def test_an_unknown_id_is_named():
    with pytest.raises(DataError, match="ids not in the cleaned data: zz9"):
        annotate.annotate(
            species(), corrections(("a", "Gentoo"), ("zz9", "Adelie")), "species", "classification"
        )


def test_an_unknown_label_is_named_with_the_known_ones():
    with pytest.raises(
        DataError, match=r"labels not in 'species': Emperor \(known: Adelie, Gentoo\)"
    ):
        annotate.annotate(species(), corrections(("a", "Emperor")), "species", "classification")


def test_a_non_numeric_label_for_regression_is_named():
    with pytest.raises(DataError, match="heavy.*not numbers"):
        annotate.annotate(masses(), corrections(("a", "heavy")), "mass", "regression")


def test_an_id_corrected_twice_is_refused():
    with pytest.raises(DataError, match="ids more than once: a"):
        annotate.annotate(
            species(), corrections(("a", "Gentoo"), ("a", "Adelie")), "species", "classification"
        )


def test_read_corrections(tmp_path):
    """The data's missing-value rule: NA is text unless data.missing_values lists it."""
    path = tmp_path / "relabel.csv"
    path.write_text("id,label,note\nabc,Gentoo,seen in photo\nNA,None,\nnull,NA,\n")
    read = annotate.read_corrections(path, [])
    assert read["id"].tolist() == ["abc", "NA", "null"], "ids are text"
    assert read["label"].tolist() == ["Gentoo", "None", "NA"], "so is a class named None"
    assert read["note"].isna().tolist() == [False, True, True], "an empty cell is missing"


@pytest.mark.parametrize(
    ("text", "missing", "found"),
    [
        ("abc,,\n", [], r"1 correction\(s\) without a label \(first on line 2;"),
        ("abc,Adelie,\ndef,NA,\n", ["NA"], r"without a label \(first on line 3;"),
        (",Adelie,\n", [], r"without an id \(first on line 2;"),
    ],
)
def test_a_correction_without_an_id_or_a_label_is_refused(tmp_path, text, missing, found):
    path = tmp_path / "relabel.csv"
    path.write_text("id,label,note\n" + text)
    with pytest.raises(DataError, match=found + ".*write the (label|id), or delete the line"):
        annotate.read_corrections(path, missing)


def test_read_corrections_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        annotate.read_corrections(tmp_path / "absent.csv", [])
    bad = tmp_path / "bad.csv"
    bad.write_text("row,label\n1,x\n")
    with pytest.raises(DataError, match="lacks column.*id"):
        annotate.read_corrections(bad, [])


def test_a_label_given_to_an_unlabelled_row_counts_as_a_change():
    df = species()
    df.loc[1, "species"] = None
    out, report = annotate.annotate(df, corrections(("b", "Adelie")), "species", "classification")
    assert out["species"].tolist() == ["Adelie", "Adelie", "Adelie"]
    assert report["labels_changed"] == 1


def noisy(toy, flips: int = 6):
    """200 toy rows with `flips` plainly wrong labels (clear lows called high and back)."""
    rows = toy("classification", n=200, seed=3)
    clear = rows.index[rows["x1"].abs() > 1.3][:flips]
    rows.loc[clear, "target"] = rows.loc[clear, "target"].map({"low": "high", "high": "low"})
    return rows, rows.loc[clear, "id"].tolist()


def judge_settings(conf, n_jobs: int = 1, **annotate):
    """The label judge's settings: the configured ones, seed 0, `n_jobs` cores, and the
    annotate settings given changed."""
    from {{ cookiecutter.package_name }}.quality import label_quality

    return label_quality.JudgeSettings(
        annotate=conf.annotate.model_copy(update=annotate),
        preprocess=conf.preprocess,
        seed=0,
        compute=conf.compute.model_copy(update={"n_jobs": n_jobs}),
    )


def find_issues(conf, rows, roles, threshold: float, folds: int, max_rows=None, n_jobs=1):
    """label_quality.find_issues with the configured transformation, seed 0, and the
    configured judge_max_rows unless given."""
    from {{ cookiecutter.package_name }}.quality import label_quality

    max_rows = max_rows or conf.annotate.judge_max_rows
    settings = judge_settings(
        conf, n_jobs, issue_threshold=threshold, cv_folds=folds, judge_max_rows=max_rows
    )
    return label_quality.find_issues(rows, roles, settings=settings)


def test_label_issues_rank_the_injected_noise_first(toy, toy_roles, conf):
    rows, flipped = noisy(toy)
    issues = find_issues(conf, rows, toy_roles, threshold=0.6, folds=5)
    assert list(issues.columns) == schema.ISSUE_COLUMNS
    assert set(issues["id"].head(len(flipped))) == set(flipped)
    assert issues["confidence"].is_monotonic_decreasing
    assert (issues["label"] != issues["suggested_label"]).all()
    assert (issues["confidence"] >= 0.6).all()
    pd.testing.assert_frame_equal(
        find_issues(conf, rows, toy_roles, 0.6, 5), issues
    )  # same seed, same file


def test_clean_labels_give_few_issues(toy, toy_roles, conf):
    rows = toy("classification", n=200, seed=3)
    issues = find_issues(conf, rows, toy_roles, threshold=0.8, folds=5)
    assert len(issues) <= 2, "only rows at a class boundary may look wrong"


def test_too_few_rows_per_class_give_an_empty_issue_list(toy, toy_roles, conf):
    rows = toy("classification").head(3).assign(target=["a", "b", "c"])
    issues = find_issues(conf, rows, toy_roles, 0.5, 5)
    assert issues.empty and list(issues.columns) == schema.ISSUE_COLUMNS


def test_the_judge_fits_on_its_budget_and_still_judges_every_row(toy, toy_roles, conf, monkeypatch):
    """Each fold's model sees at most judge_max_rows rows; every row gets a probability."""
    from sklearn.linear_model import LogisticRegression

    from {{ cookiecutter.package_name }}.quality import label_quality

    seen = []
    real_fit = LogisticRegression.fit

    def spy(self, X, y, *args, **kwargs):
        seen.append(len(X))
        return real_fit(self, X, y, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", spy)
    rows, flipped = noisy(toy)
    settings = judge_settings(conf, 2, cv_folds=4, judge_max_rows=60)
    proba, classes = label_quality.out_of_fold_proba(rows, toy_roles, settings=settings)
    assert sorted(seen) == [60] * 4, "four folds, each fitted on a 60-row sample"
    assert proba.shape == (len(rows), len(classes))
    assert np.allclose(proba.sum(axis=1), 1.0), "every row judged"
    seen.clear()
    settings = judge_settings(conf, 1, cv_folds=4, judge_max_rows=60)
    again, _ = label_quality.out_of_fold_proba(rows, toy_roles, settings=settings)
    assert np.array_equal(again, proba), "folds in parallel or not, the same probabilities"
    issues = find_issues(conf, rows, toy_roles, 0.6, 4, max_rows=60, n_jobs=2)
    assert set(flipped) & set(issues["id"]), "a sampled judge still finds planted noise"


def test_pseudo_labels_only_where_the_model_is_sure(toy, toy_roles, conf):
    from {{ cookiecutter.package_name }}.quality import label_quality

    rows = toy("classification", n=200, seed=3)
    truth = rows["target"].copy()
    unlabelled = rows.iloc[150:].assign(target=None)
    unlabelled["target"] = unlabelled["target"].astype(rows["target"].dtype)
    sure = conf.annotate.pseudo_label.model_copy(update={"min_confidence": 0.9})
    settings = judge_settings(conf, pseudo_label=sure)
    out = label_quality.pseudo_label(rows.iloc[:150], unlabelled, toy_roles, settings=settings)
    assert 0 < len(out) < len(unlabelled), "clear rows labelled, boundary rows left out"
    assert (out["target"] == truth.loc[out.index]).mean() >= 0.95
    assert (out["batch"] == schema.PSEUDO_LABELLED).all()
    assert out["target"].dtype == rows["target"].dtype
    none = unlabelled.iloc[0:0]
    assert label_quality.pseudo_label(rows, none, toy_roles, settings=settings).empty


def review_params(make_params, task: str, enabled: bool):
    return make_params(
        {
            "task": task,
            "data.target": "target",
            "data.groups": [],
            "data.time": None,
            "annotate.pseudo_label.enabled": enabled,
        }
    )


def reviewed(labelled: pd.DataFrame, unlabelled: pd.DataFrame, params):
    """annotate.review with the settings it reads from `params`."""
    return annotate.review(labelled, unlabelled, settings=annotate.Settings.of(params))


def test_review_adds_pseudo_labelled_rows_when_enabled(toy, make_params):
    rows = toy("classification", n=200, seed=3)
    labelled, unlabelled = rows.iloc[:150], rows.iloc[150:].assign(target=pd.NA)
    off = review_params(make_params, "classification", False)
    _, kept, report = reviewed(labelled, unlabelled, off)
    assert len(kept) == 150 and report["pseudo_labelled"] == 0
    on = review_params(make_params, "classification", True)
    _, grown, report = reviewed(labelled, unlabelled, on)
    assert report["pseudo_labelled"] == len(grown) - 150 > 0


def test_review_for_regression(toy, make_params):
    from {{ cookiecutter.package_name }}.core.errors import ConfigError

    rows = toy("regression")
    params = review_params(make_params, "regression", False)
    issues, kept, report = reviewed(rows, rows.iloc[0:0], params)
    assert issues.empty and list(issues.columns)[:4] == ["id", "label", "suggested_label",
                                                          "confidence"]  # fmt: skip
    assert kept is rows and report == {"label_issues": 0, "pseudo_labelled": 0}
    with pytest.raises(ConfigError, match="pseudo_label needs class probabilities"):
        reviewed(rows, rows.iloc[0:0], review_params(make_params, "regression", True))


def test_a_class_smaller_than_the_judges_folds_is_refused_before_it_judges(toy, make_params):
    from {{ cookiecutter.package_name }}.core.errors import DataError

    rows = toy("classification", n=100)
    rows.loc[:2, "target"] = "rare"
    params = review_params(make_params, "classification", False)
    message = "class 'rare' of 'target' has 3 row.*annotate.cv_folds=5 .*cv_folds to 3 or less"
    with pytest.raises(DataError, match=message):
        reviewed(rows, rows.iloc[0:0], params)


def test_the_judge_transforms_as_preprocess_is_configured(toy, toy_roles, configured):
    from sklearn.preprocessing import RobustScaler

    from {{ cookiecutter.package_name }}.quality import label_quality

    rows = schema.model_frame(toy("classification"), toy_roles)
    rules = configured("preprocess", scale="robust", impute_numeric="mean")
    transformer = label_quality.judge(rows, toy_roles, rules, 0)[0]
    numeric = dict((name, steps) for name, steps, _ in transformer.transformers)["numeric"]
    assert isinstance(numeric.named_steps["scale"], RobustScaler)
    assert numeric.named_steps["impute"].strategy == "mean"
