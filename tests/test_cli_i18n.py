"""The CLI speaks the locale's language: zh-CN under LANG=zh_CN.*, English otherwise (cli/i18n.py).

The main operator commands run under both locales (help, a success, a user error, a usage
error) and the output must change language while the exit codes stay; the zh_CN catalog must
translate every message the CLI has, with the same placeholders."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from click.testing import CliRunner
from rich.cells import cell_len

from cli import i18n, i18n_extract
from cli.main import main

ZH = {"LANG": "zh_CN.UTF-8", "LC_ALL": None, "LC_MESSAGES": None}
EN = {"LANG": "C.UTF-8", "LC_ALL": None, "LC_MESSAGES": None}
HAN = re.compile(r"[\u4e00-\u9fff]")
PO = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "schoolmesh.po"


def run(home: Path, env: dict, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--home", str(home), *args],
                           env={"SCHOOLMESH_HOME": None, "SCHOOLMESH_PASSPHRASE": None,
                                "SCHOOLMESH_TEACHER_PASSWORD": "correct horse battery", **env})
    return r.exit_code, r.stdout, r.stderr


def chinese(text: str) -> int:
    return len(HAN.findall(text))


HELP = [(), ("init",), ("start",), ("status",), ("publish",), ("update",), ("search",), ("get",),
        ("limits", "set"), ("transfers",), ("service", "install"), ("community", "invite"),
        ("export",), ("import",), ("gc",), ("teacher", "add"), ("teacher", "revoke"),
        ("teacher", "export"), ("teacher", "import"), ("teacher", "record"), ("course",),
        ("course", "create"), ("course", "adopt"), ("course", "status"), ("studio",),
        ("studio", "invite"), ("studio", "tasks"), ("studio", "review"), ("report",),
        ("report", "hide"), ("report", "seed-rare"), ("ai",), ("ai", "set")]


@pytest.mark.parametrize("command", HELP, ids=lambda c: " ".join(c) or "schoolmesh")
def test_help_follows_the_locale(tmp_path, command):
    code_en, en, _ = run(tmp_path, EN, *command, "--help")
    code_zh, zh, _ = run(tmp_path, ZH, *command, "--help")
    assert code_en == code_zh == 0
    cmd = main
    for name in command:
        cmd = cmd.commands[name]
    texts = [cmd.help] + [p.help for p in cmd.params if getattr(p, "help", None)]
    # English: no Chinese but the values the source's help gives as examples (数学, 上册, ...)
    examples = set(HAN.findall(" ".join(filter(None, texts + [
        c.help for c in getattr(cmd, "commands", {}).values()]))))
    assert set(HAN.findall(en)) <= examples and "Usage:" in en and "Options" in en
    assert "用法：" in zh and "选项" in zh and "Show this message" not in zh
    # wrapped by display columns: a Chinese character takes two, no line is wider than 80
    assert max(cell_len(line) for line in zh.splitlines() if chinese(line)) <= 80
    # the command's text and every option's help, in Chinese (the start of each, as wrapped)
    flat = re.sub(r"\s+", "", zh)
    for text in filter(None, texts):
        first = i18n.help_id(text).split("\n")[0][:30]
        assert first in re.sub(r"\s+", " ", en) or first in en, first
        assert first not in zh, first
        with PO.open("rb") as fh:
            translated = read_po(fh, locale="zh_CN")[i18n.help_id(text)].string
        assert chinese(translated) and re.sub(r"\s+", "", translated)[:12] in flat, text


def test_main_commands_succeed_and_fail_in_both_languages(tmp_path):
    outputs = {}
    for name, env in (("en", EN), ("zh", ZH)):
        home = tmp_path / name
        code, out, err = run(home, env, "init", "--name", "青山村小")
        assert code == 0, err
        outputs[name, "init"] = out
        outputs[name, "teachers"] = run(home, env, "teacher", "list")[1]
        assert run(home, env, "limits", "set", "--down", "10M")[0] == 0
        outputs[name, "limits"] = run(home, env, "limits", "show")[1]
        for what, args, want in (("not running", ("status",), 1),
                                 ("bad rate", ("limits", "set", "--up", "fast"), 1),
                                 ("bad size", ("limits", "set", "--monthly-budget", "20X"), 1),
                                 ("no teacher", ("teacher", "remove", "nobody"), 1),
                                 ("usage", ("limits", "set", "--bogus"), 2),
                                 ("no home", ("--home", str(tmp_path / "none"), "teacher",
                                              "list"), 1)):
            code, out, err = run(home, env, *args)
            assert code == want, (name, what, err)
            assert out == ""
            outputs[name, what] = err
    assert "Created node '青山村小'" in outputs["en", "init"]
    assert "已在" in outputs["zh", "init"] and "创建节点“青山村小”（学校）" in outputs["zh", "init"]
    assert "no teachers yet" in outputs["en", "teachers"]
    assert "还没有教师账号" in outputs["zh", "teachers"]
    assert "# in force now: up unlimited, down 10Mbit/s" in outputs["en", "limits"]
    assert "# 当前生效：上传 unlimited，下载 10Mbit/s" in outputs["zh", "limits"]
    assert outputs["en", "not running"] == \
        "error: the node is not running (start it with 'schoolmesh start')\n"
    assert outputs["zh", "not running"] == "错误：节点没有运行（用 'schoolmesh start' 启动）\n"
    assert outputs["en", "bad rate"].startswith("error: bad rate 'fast': expected a rate like")
    assert outputs["zh", "bad rate"].startswith("错误：速率 'fast' 无效：应为速率，例如 10M")
    assert "每月流量额度 '20X' 无效" in outputs["zh", "bad size"]
    assert outputs["zh", "no teacher"] == "错误：没有教师 'nobody'\n"
    assert "No such option '--bogus'" in outputs["en", "usage"]
    assert "错误：没有选项 '--bogus'。" in outputs["zh", "usage"]
    assert "用 'main limits set --help' 查看帮助。" in outputs["zh", "usage"]  # in-process name
    assert "不是 schoolmesh 主目录" in outputs["zh", "no home"]
    for key in outputs:
        if key[0] == "en":
            assert chinese(outputs[key].replace("青山村小", "")) == 0, key


def test_locale_variables_in_gettext_order(monkeypatch):
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    assert i18n.language() == "en"
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert i18n.language() == "zh_CN"
    monkeypatch.setenv("LC_MESSAGES", "en_US.UTF-8")     # more specific than LANG
    assert i18n.language() == "en"
    monkeypatch.setenv("LC_ALL", "zh_CN.GB18030")        # wins over both
    assert i18n.language() == "zh_CN"
    monkeypatch.setenv("LC_ALL", "zh_TW.UTF-8")          # traditional Chinese: not this catalog
    assert i18n.language() == "en"


def test_a_real_process_reads_the_catalog():
    """As on a fresh clone: a new process, the catalog found next to the code."""
    env = {**os.environ, "LANG": "zh_CN.UTF-8"}
    env.pop("LC_ALL", None)
    r = subprocess.run([str(Path(sys.executable).parent / "schoolmesh"), "--help"],
                       capture_output=True,
                       text=True, env=env, timeout=60, cwd=Path(__file__).parents[1])
    assert r.returncode == 0 and "在学校之间共享" in r.stdout


def test_the_catalog_translates_every_message():
    with PO.open("rb") as fh:
        po = read_po(fh, locale="zh_CN")
    assert not po.fuzzy
    ids = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in po if m.id}
    wanted = i18n_extract.messages()
    missing = [m for m in wanted if m not in ids]
    assert not missing, f"not in the .po (run: python -m cli.i18n_extract): {missing[:5]}"
    untranslated = [k for k, m in ids.items()
                    if not (m.string if isinstance(m.string, str) else all(m.string))]
    assert not untranslated, untranslated[:5]
    assert not [k for k, m in ids.items() if m.fuzzy]
    assert not [(m.id, errors) for m, errors in po.check() if errors]   # as pybabel compile
    # placeholders: the translation has the same {fields} / %(fields)s as the English
    field = re.compile(r"\{[^{}]*\}|%\([a-z]+\)s")
    for key, m in ids.items():
        english = " ".join(key) if isinstance(key, tuple) else key
        text = m.string if isinstance(m.string, str) else " ".join(m.string)
        got, need = set(field.findall(text)), set(field.findall(english))
        if isinstance(key, tuple):      # Chinese has one form: it may drop a singular field
            assert got <= need, (key, text)
        else:
            assert got == need, (key, text)


def test_course_studio_report_and_teacher_messages_in_both_languages(tmp_path):
    out: dict[tuple[str, str], str] = {}
    for name, env in (("en", EN), ("zh", ZH)):
        home = tmp_path / name
        assert run(home, env, "init", "--name", "青山村小")[0] == 0
        for what, args, want in (
                ("courses", ("course", "list"), 0),
                ("adoptions", ("course", "status"), 0),
                ("no file", ("course", "create", str(tmp_path / "none.yaml")), 2),
                ("studios", ("studio", "list"), 0),
                ("no due", ("studio", "tasks", "s1", "--add", "说课"), 1),
                ("bad date", ("report", "--from", "2026-13-01"), 2),
                ("no community", ("report",), 1),
                ("community", ("community", "create", "青山片区"), 0),
                ("report", ("report",), 0),
                ("announce", ("report", "announce"), 0),
                ("add", ("teacher", "add", "李老师"), 0),
                ("revoke", ("teacher", "revoke", "李老师"), 0),
                ("record", ("teacher", "record", "李老师"), 0),
                ("revoked acts", ("studio", "create", "数学工作室", "--teacher", "李老师"), 1),
                ("period", ("report", "--from", "2026-02-01", "--to", "2026-01-01"), 1),
                ("no course", ("course", "show", "k" + "a" * 26), 1)):
            code, stdout, stderr = run(home, env, *args)
            assert code == want, (name, what, stderr)
            out[name, what] = stdout if code == 0 else stderr
        outline = tmp_path / "course.txt"
        outline.write_text("title: 三年级科学\nsubject: 科学\ngrade: 3\n\n# 1 水\n"
                           "- 1 观察天气 (2 课时)\n", "utf-8")
        code, out[name, "create"], err = run(home, env, "course", "create", str(outline))
        assert code == 0, err
        kid = re.search(r"k[a-z2-7]{26}", out[name, "create"]).group(0)
        code, out[name, "show"], err = run(home, env, "course", "show", kid)
        assert code == 0, err
    assert re.fullmatch(r"course k\w+ published \(version 1, 1 lessons\)\n",
                        out["en", "create"])
    assert re.fullmatch(r"已发布课程 k\w+（第 1 版，1 课）\n", out["zh", "create"])
    assert "  科学, grade 3; by 青山村小\n  unit 1 水\n    1. 观察天气 (2 periods)\n" in \
        out["en", "show"]
    assert re.match(r"三年级科学（k\w+，第 1 版）\n  科学，3年级；来自 青山村小\n  第 1 单元 水\n"
                    r"    1\. 观察天气（2 课时）\n", out["zh", "show"])
    assert out["en", "courses"] == "no courses\n" and out["zh", "courses"] == "没有课程\n"
    assert "no adopted courses" in out["en", "adoptions"]
    assert "还没有选用任何课程" in out["zh", "adoptions"]
    assert "none.yaml: no such file" in out["en", "no file"]
    assert "none.yaml：没有这个文件" in out["zh", "no file"]
    assert out["en", "studios"] == "no studios here\n"
    assert out["zh", "studios"] == "这里还没有名师工作室\n"
    assert out["en", "no due"] == "error: --add needs --due YYYY-MM-DD and --teacher\n"
    assert out["zh", "no due"] == "错误：--add 需要同时给出 --due YYYY-MM-DD 和 --teacher\n"
    assert "'2026-13-01' is not a date like 2026-09-01" in out["en", "bad date"]
    assert "'2026-13-01' 不是日期" in out["zh", "bad date"]
    assert "本校尚未加入任何社区" in out["zh", "no community"]
    assert out["en", "report"].startswith("community 青山片区 (c")
    assert "computed from 1 feeds:" in out["en", "report"]
    assert "grades with nothing: preschool, lower-primary" in out["en", "report"]
    assert out["zh", "report"].startswith("社区 青山片区（c")
    assert "依据 1 所学校的目录统计：" in out["zh", "report"]
    assert "没有资源的学段：学前、小学低年级" in out["zh", "report"]
    assert out["en", "announce"] == "not signed (nothing held): 0 resources\n"
    assert out["zh", "announce"] == "没有签署（没有保存任何资源）：0 个资源\n"
    assert "teacher key: t" in out["en", "add"] and "教师密钥：t" in out["zh", "add"]
    assert out["en", "revoke"] == "revoked the certificate of 李老师\n"
    assert out["zh", "revoke"] == "已吊销 李老师 的证书\n"
    assert "this school does not vouch for the signed-in teacher" in out["en", "revoked acts"]
    assert out["zh", "revoked acts"].startswith("错误：本校没有为这位教师的身份担保")
    assert out["en", "period"] == "error: the report's --from must be before --to\n"
    assert out["zh", "period"] == "错误：报告的 --from 必须早于 --to\n"
    assert out["zh", "no course"] == f"错误：本资源库中没有课程 'k{'a' * 26}'\n"
    assert "used in class: 0" in out["en", "record"]
    assert "课堂使用：0" in out["zh", "record"]
    for key, text in out.items():
        if key[0] == "en":
            typed = "青山村小|青山片区|李老师|说课|三年级科学|科学|水|观察天气|数学工作室"
            assert chinese(re.sub(typed, "", text)) == 0, key
        else:
            assert chinese(text), key
