import unicodedata

import pytest

from protocol.paths import (MAX_NAME_BYTES, BadPath, check_name, check_path, fold, normalise,
                            numbered, plan_writes, portable_name, portable_problem)


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


# -- portable names: what FAT/exFAT/NTFS accept (specs/content.md §5.1) ------------------------

@pytest.mark.parametrize("name,problem", [
    ("a:b.txt", "contains ':'"),
    ('q?"*.txt', "contains '\"' '*' '?'"),
    ("<tag>|pipe", "contains '<' '>' '|'"),
    ("tab\there", "contains '\\t'"),
    ("notes.", "ends with a dot or a space"),
    ("notes ", "ends with a dot or a space"),
    ("CON", "is a reserved device name"),
    ("con.txt", "is a reserved device name"),
    ("Lpt9.tar.gz", "is a reserved device name"),
    ("COM¹", "is a reserved device name"),
    ("nul .txt", "is a reserved device name"),
])
def test_portable_problem(name, problem):
    assert portable_problem(name) == problem


@pytest.mark.parametrize("name", ["Lesson.pdf", "第一课 分数.txt", ".hidden", "a..b", "CONSOLE",
                                  "com10.txt", "lpt.txt", "x.con", "pizza 🍕.svg", "a b"])
def test_portable_names_pass(name):
    assert portable_problem(name) is None
    assert portable_name(name) == name


@pytest.mark.parametrize("name,renamed", [
    ("a:b.txt", "a_b.txt"),
    ('what?*"<>|.txt', "what______.txt"),
    ("notes.", "notes_"),
    ("notes. .", "notes___"),
    ("...", "___"),
    ("CON", "CON_"),
    ("con.txt", "con_.txt"),
    ("aux.tar.gz", "aux_.tar.gz"),
    ("tab\there", "tab_here"),
])
def test_portable_name(name, renamed):
    assert portable_name(name) == renamed
    assert portable_problem(renamed) is None


def test_numbered_keeps_the_extension_and_the_length_limit():
    assert numbered("Lesson.pdf", 2, folder=False) == "Lesson (2).pdf"
    assert numbered("README", 3, folder=False) == "README (3)"
    assert numbered(".profile", 2, folder=False) == ".profile (2)"
    assert numbered("v1.0", 2, folder=True) == "v1.0 (2)"
    long = "课" * 84 + ".pdf"  # 252 + 4 bytes
    out = numbered(long, 2, folder=False)
    assert out.endswith(" (2).pdf") and len(out.encode("utf-8")) <= MAX_NAME_BYTES
    check_name(out)


def test_fold_is_case_and_normalisation_blind():
    assert fold("Lesson.PDF") == fold("lesson.pdf")
    assert fold("Émile") == fold("émile") == fold(unicodedata.normalize("NFD", "ÉMILE"))
    assert fold("STRASSE") == fold("straße")
    assert fold("数学") == "数学"


def _plan(paths, **kw):
    p = plan_writes(paths, **kw)
    return dict(p.targets) if len(set(paths)) == len(paths) else list(p.targets), \
        [(c.kind, c.paths) for c in p.conflicts]


def test_plan_portable_paths_unchanged():
    paths = ["练习/第一课/题目.txt", "练习/答案.txt", "README", "图片/pizza 🍕.svg"]
    plan = plan_writes(paths)
    assert plan.conflicts == () and plan.renamed == ()
    assert [t for _, t in plan.targets] == paths


def test_plan_case_collision():
    targets, conflicts = _plan(["lesson.pdf", "Lesson.pdf", "LESSON.PDF"])
    assert targets == {"LESSON.PDF": "LESSON.PDF", "Lesson.pdf": "Lesson (2).pdf",
                       "lesson.pdf": "lesson (3).pdf"}
    assert conflicts == [("case", ("LESSON.PDF", "Lesson.pdf")),
                         ("case", ("LESSON.PDF", "lesson.pdf"))]


def test_plan_case_collision_after_case_folding():
    e = "\u00e9"  # é; names are NFC already, case folding differs
    targets, conflicts = _plan([f"{e}t{e}.txt", f"{e.upper()}T{e.upper()}.txt"])
    assert targets == {f"{e.upper()}T{e.upper()}.txt": f"{e.upper()}T{e.upper()}.txt",
                       f"{e}t{e}.txt": f"{e}t{e} (2).txt"}
    assert [k for k, _ in conflicts] == ["case"]


def test_plan_folders_differing_in_case():
    targets, conflicts = _plan(["Docs/a.txt", "docs/b.txt", "docs/c.txt"])
    assert targets == {"Docs/a.txt": "Docs/a.txt", "docs/b.txt": "docs (2)/b.txt",
                       "docs/c.txt": "docs (2)/c.txt"}
    assert conflicts == [("case", ("Docs", "docs"))]  # reported once for the folder


def test_plan_file_and_folder():
    targets, conflicts = _plan(["a", "a/b", "a/c"])
    assert targets == {"a": "a", "a/b": "a (2)/b", "a/c": "a (2)/c"}
    assert conflicts == [("file-and-folder", ("a", "a"))]
    targets, conflicts = _plan(["A", "a/b.txt"])
    assert targets == {"A": "A", "a/b.txt": "a (2)/b.txt"}
    assert conflicts == [("file-and-folder", ("A", "a"))]


def test_plan_duplicates():
    targets, conflicts = _plan(["x/a.txt", "x/a.txt", "x/a.txt"])
    assert targets == [("x/a.txt", "x/a.txt"), ("x/a.txt", "x/a (2).txt"),
                       ("x/a.txt", "x/a (3).txt")]
    assert conflicts == [("duplicate", ("x/a.txt",))] * 2


def test_plan_forbidden_names_and_their_folders():
    targets, conflicts = _plan(["Q&A: week 1/notes?.txt", "Q&A: week 1/list.", "ok.txt"])
    assert targets == {"Q&A: week 1/notes?.txt": "Q&A_ week 1/notes_.txt",
                       "Q&A: week 1/list.": "Q&A_ week 1/list_", "ok.txt": "ok.txt"}
    assert conflicts == [("name", ("Q&A: week 1",)), ("name", ("Q&A: week 1/list.",)),
                         ("name", ("Q&A: week 1/notes?.txt",))]


def test_plan_rename_never_takes_a_name_that_needs_none():
    # "a:b.txt" sorts before "a_b.txt" but the portable name keeps its own name
    targets, conflicts = _plan(["a:b.txt", "a_b.txt", "A_B.txt"])
    assert targets == {"A_B.txt": "A_B.txt", "a_b.txt": "a_b (2).txt",
                       "a:b.txt": "a_b (3).txt"}
    assert [k for k, _ in conflicts] == ["case", "name"]


def test_plan_reserved_name_is_kept_free():
    targets, conflicts = _plan(["renamed-files.txt", "x:y"], reserved=("RENAMED-FILES.txt",))
    assert targets == {"renamed-files.txt": "renamed-files (2).txt", "x:y": "x_y"}
    assert [k for k, _ in conflicts] == ["name"]


@pytest.mark.parametrize("paths", [
    ["b", "B", "b/c", "B/C", "b:", "b_", "CON", "con_", "a.", "a_", "a", "A/x"],
    ["d/" + n for n in ("x", "X", "x.", "x_", "x:", "x (2)", "X (2)")],
])
def test_plan_is_deterministic_and_portable(paths):
    plan = plan_writes(paths)
    assert plan_writes(list(reversed(paths))).targets == tuple(reversed(plan.targets))
    targets = [t for _, t in plan.targets]
    for t in targets:
        check_path(t)
        assert all(portable_problem(n) is None for n in t.split("/"))
    # no two targets collide on a case-insensitive file system, and no file is also a folder
    folded = [tuple(fold(n) for n in t.split("/")) for t in targets]
    assert len(set(folded)) == len(folded)
    assert not {f[:i] for f in folded for i in range(1, len(f))} & set(folded)
    assert plan.conflicts and "; " in plan.describe()


def test_describe_caps_the_list():
    plan = plan_writes([f"n{i}:" for i in range(9)])
    assert plan.describe().endswith("; and 4 more")
    assert plan.describe().count("contains ':'") == 5


def test_plan_clash_made_by_a_rename_is_not_called_a_case_conflict():
    targets, conflicts = _plan(["a_", "a:/x.txt"])
    assert targets == {"a_": "a_", "a:/x.txt": "a_ (2)/x.txt"}
    assert conflicts == [("name", ("a:",))]
