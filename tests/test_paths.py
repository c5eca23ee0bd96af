import unicodedata

import pytest

from protocol.paths import BadPath, check_path, normalise


@pytest.mark.parametrize("given,canon", [
    ("a/b.txt", "a/b.txt"),
    ("./a//b.txt", "a/b.txt"),
    ("a\\b.txt", "a/b.txt"),
    (unicodedata.normalize("NFD", "Ünïcödé/é.txt"), "Ünïcödé/é.txt"),
    ("数学/第一课 分数.txt", "数学/第一课 分数.txt"),
])
def test_normalise(given, canon):
    assert normalise(given) == canon
    assert unicodedata.is_normalized("NFC", normalise(given))


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "a\x00b", "", ".",
                                 "CON", "aux.txt", "lpt1", "a\tb", "x" * 300,
                                 "/".join(["d"] * 40)])
def test_normalise_rejects(bad):
    with pytest.raises(BadPath):
        normalise(bad)


@pytest.mark.parametrize("bad", ["a//b", "./a", "a/", "a\\b",
                                 unicodedata.normalize("NFD", "é.txt")])
def test_check_path_wants_canonical_form(bad):
    with pytest.raises(BadPath):
        check_path(bad)
