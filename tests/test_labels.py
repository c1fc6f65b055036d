import pytest

from rebusyn.sample import LabelPolicy


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("Genaxis Theatre", "genaxistheatre"),
        ("[06]", "06"),
        ("62-03", "6203"),
        ("Café", "cafe"),
        ("ﬁsh", "fish"),  # ligature expanded by NFKD
        ("STRASSE", "strasse"),
        ("½", "12"),
    ],
)
def test_charset_36(raw, label):
    assert LabelPolicy("36").normalize(raw) == (label, None)


def test_charset_94_keeps_case_and_punctuation_drops_space():
    assert LabelPolicy("94").normalize("Genaxis Theatre!") == ("GenaxisTheatre!", None)
    assert LabelPolicy("94").normalize("Café—“x”") == ("Cafex", None)


def test_charset_unicode_is_nfkc_only():
    assert LabelPolicy("unicode").normalize("ﬁ  Café 東京") == ("fi Café 東京", None)


def test_drop_reasons():
    assert LabelPolicy("36").normalize("!!") == (None, "empty_label")
    assert LabelPolicy("36").normalize("東京") == (None, "empty_label")
    assert LabelPolicy("36", max_len=5).normalize("abcdef") == (None, "label_too_long")
    # the length filter runs after normalization: punctuation does not count
    assert LabelPolicy("36", max_len=5).normalize("a-b-c-d-e") == ("abcde", None)


def test_bad_policy_is_rejected():
    with pytest.raises(ValueError, match="unknown charset"):
        LabelPolicy("62")
    with pytest.raises(ValueError):
        LabelPolicy("36", max_len=0)
