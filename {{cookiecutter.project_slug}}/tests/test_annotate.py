"""annotate: label corrections by id; unknown ids and labels are errors, never skipped."""

from __future__ import annotations

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.errors import DataError
from {{ cookiecutter.package_name }}.stages import annotate


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
    path = tmp_path / "relabel.csv"
    path.write_text("id,label,note\nabc,Gentoo,seen in photo\nNA,Adelie,\n")
    read = annotate.read_corrections(path)
    assert read["id"].tolist() == ["abc", "NA"], "ids are text, never parsed as missing"
    assert read["label"].tolist() == ["Gentoo", "Adelie"]


def test_read_corrections_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        annotate.read_corrections(tmp_path / "absent.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("row,label\n1,x\n")
    with pytest.raises(DataError, match="lacks column.*id"):
        annotate.read_corrections(bad)
