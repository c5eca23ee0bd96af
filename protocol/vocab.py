"""Metadata vocabularies (specs/records.md §5). Values are the identifiers stored in records."""

from __future__ import annotations

import re
from typing import Any

from .errors import LocalProtocolError

# Kolibri's grade-level vocabulary (le_utils.constants.labels.levels), as kebab-case names;
# the value is Kolibri's own id, kept for export to Kolibri channels.
LEVELS = {
    "preschool": "b#GEd",
    "lower-primary": "by0beT",
    "upper-primary": "bSQdiJ",
    "lower-secondary": "svpsy",
    "upper-secondary": "dn4KHz",
    "tertiary": "b&jDyf",
    "professional": "dnezU7",
    "work-skills": "dp73Sn",
    "basic-skills": "chRJoI",
}

# Kolibri's resource types (le_utils.constants.labels.resource_type) plus three that schools
# publish most and Kolibri lacks: worksheet, courseware and micro-lecture (short video lesson).
RESOURCE_TYPES = (
    "lesson-plan", "lesson", "worksheet", "exercise", "courseware", "micro-lecture", "media",
    "textbook", "book", "tutorial", "activity", "game", "guide", "ai-model",
)
# "ai-model": a model file (GGUF) for the schools' local AI engine (specs/records.md §5.1).

# Subjects of the compulsory-education curriculum (义务教育课程方案 2022) with words that mark a
# text as belonging to one; used only to *suggest* ``about`` at publish time (node/tools.py
# ``subjects``), never to check a record (``about`` stays free text).
SUBJECTS: dict[str, tuple[str, ...]] = {
    "语文": ("拼音", "生字", "词语", "课文", "古诗", "朗读", "作文", "汉字", "句子", "阅读", "识字",
           "标点", "诗人", "成语", "笔画", "偏旁"),
    "数学": ("分数", "加法", "减法", "乘法", "除法", "计算", "数学", "面积", "周长", "图形", "小数",
           "方程", "长方形", "三角形", "几何", "乘法口诀", "约数", "倍数", "统计", "厘米", "算式"),
    "英语": ("英语", "单词", "字母", "English", "grammar", "vocabulary", "phonics", "dialogue"),
    "科学": ("科学", "实验", "植物", "动物", "种子", "天气", "水", "空气", "磁铁", "电路", "岩石",
           "观察", "昆虫", "土壤", "光合作用", "太阳", "月亮", "温度", "细胞"),
    "道德与法治": ("道德", "法治", "法律", "规则", "诚信", "安全", "家庭", "集体", "权利", "责任",
              "文明", "礼貌"),
    "音乐": ("音乐", "唱歌", "歌曲", "节奏", "旋律", "乐器", "音符", "歌唱"),
    "美术": ("美术", "绘画", "画画", "颜色", "色彩", "剪纸", "手工", "线条", "涂色"),
    "体育与健康": ("体育", "跑步", "跳绳", "运动", "健康", "锻炼", "游戏", "足球", "篮球", "广播操"),
    "信息科技": ("信息", "计算机", "电脑", "编程", "网络", "键盘", "鼠标", "数据", "算法"),
    "劳动": ("劳动", "种植", "养殖", "烹饪", "家务", "农具", "收割", "整理"),
    "历史": ("历史", "朝代", "古代", "皇帝", "战争", "文物", "革命"),
    "地理": ("地理", "地图", "气候", "河流", "山脉", "省份", "经纬", "地形"),
    "物理": ("物理", "力", "速度", "压强", "浮力", "电流", "电压", "光的折射"),
    "化学": ("化学", "元素", "分子", "原子", "化学反应", "溶液", "酸", "碱"),
    "生物": ("生物", "细胞", "遗传", "生态", "器官", "消化", "呼吸作用"),
}

# SPDX identifiers of the licences schools use for open educational resources.
LICENSES = (
    "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "CC-BY-ND-4.0",
    "CC-BY-NC-ND-4.0", "CC0-1.0", "CC-PDDC", "GFDL-1.3-or-later", "MIT", "Apache-2.0",
    "LicenseRef-All-Rights-Reserved",
)
DEFAULT_LICENSE = "CC-BY-4.0"

# Textbook curriculum (specs/records.md §5.3): grades 0 (学前, preschool) to 12, volumes, and
# the editions offered as suggestions (the edition itself is free text).
GRADE_MIN, GRADE_MAX = 0, 12
VOLUMES = ("first", "second", "single")        # 上册, 下册, 全一册
COMMON_EDITIONS = ("人教版", "北师大版", "统编版", "部编版", "苏教版", "外研版", "沪教版",
                   "湘教版", "冀教版", "青岛版", "浙教版", "译林版", "教科版", "粤教版")
NUMBER_MAX = 999                              # unit and lesson numbers


VOLUME_WORDS = {"上册": "first", "下册": "second", "全一册": "single", "上": "first",
                "下": "second"}
GRADE_WORDS = {"学前": 0, "preschool": 0}
_PART = re.compile(r"^\s*(?:第\s*)?(\d+)\s*(?:单元|课|[.、:：)）]|\s|$)\s*(.*)$", re.S)


def parse_grade(text: str) -> int:
    """``3``, ``学前`` or ``preschool`` → the record's grade (0–12)."""
    t = text.strip()
    g = GRADE_WORDS.get(t.casefold(), GRADE_WORDS.get(t))
    if g is None and t.isdigit() and t.isascii():
        g = int(t)
    if g is None or not GRADE_MIN <= g <= GRADE_MAX:
        raise LocalProtocolError(f"grade {text!r}: give 学前 (preschool) or 1-12")
    return g


def parse_volume(text: str) -> str:
    """``上册``/``下册``/``全一册`` or ``first``/``second``/``single`` → the identifier."""
    t = text.strip()
    v = VOLUME_WORDS.get(t, t.casefold())
    if v not in VOLUMES:
        raise LocalProtocolError(f"volume {text!r}: give 上册, 下册 or 全一册 "
                                 "(first, second, single)")
    return v


def parse_part(text: str, what: str = "unit") -> dict[str, Any]:
    """``"5 时、分、秒"`` → ``{"number": 5, "title": "时、分、秒"}``; a number or a title alone
    gives only that key (``第5单元``, ``1. 认识钟表`` work too)."""
    t = text.strip()
    if not t:
        raise LocalProtocolError(f"{what}: give a number, a title or both (\"5 时、分、秒\")")
    m = _PART.match(t)
    out: dict[str, Any] = {}
    if m:
        n = int(m.group(1))
        if not 1 <= n <= NUMBER_MAX:
            raise LocalProtocolError(f"{what} number must be 1-{NUMBER_MAX}")
        out["number"] = n
        t = m.group(2).strip()
    if t:
        if len(t) > 200:
            raise LocalProtocolError(f"{what} title is longer than 200 characters")
        out["title"] = t
    return out


def part_label(part: Any) -> str:
    """``{"number": 5, "title": "时、分、秒"}`` → ``"5 时、分、秒"``."""
    if not isinstance(part, dict):
        return ""
    return " ".join(str(part[k]) for k in ("number", "title") if k in part)


def level_of_grade(grade: int) -> str:
    """The Kolibri level a school grade belongs to (China: 6 primary, 3 + 3 secondary)."""
    if grade == 0:
        return "preschool"
    return ("lower-primary" if grade <= 3 else "upper-primary" if grade <= 6
            else "lower-secondary" if grade <= 9 else "upper-secondary")


# Who pays for / provides the material (the seed's supply models).
SUPPLY = ("government", "market", "public-welfare", "school")
# How the material reaches a classroom (the seed's three classroom forms).
CLASSROOM = ("specialised-delivery", "master-teacher", "elite-school")

# RFC 5646 well-formed tag, without grandfathered/private-use-only forms.
_BCP47 = re.compile(
    r"^[A-Za-z]{2,3}(-[A-Za-z]{3}){0,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?"
    r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*(-[A-WY-Za-wy-z0-9](-[A-Za-z0-9]{2,8})+)*"
    r"(-[xX](-[A-Za-z0-9]{1,8})+)?$")
# ISO 8601 duration as used by LRMI timeRequired, e.g. PT40M, PT1H30M, P2D.
_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")


# The checks take values straight from decoded records, so any type may arrive: anything but
# text is refused with the same error as an unknown text (and never reaches ``in`` or ``re``).

def check_choice(field: str, value: str, allowed: tuple[str, ...] | dict[str, str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise LocalProtocolError(
            f"unknown {field} {value!r}; allowed: {', '.join(allowed)}")
    return value


def check_language(tag: str) -> str:
    if not isinstance(tag, str) or not _BCP47.match(tag):
        raise LocalProtocolError(
            f"language {tag!r} is not a BCP 47 tag (examples: zh-CN, en, bo, ug-Arab-CN)")
    return tag


def check_duration(text: str) -> str:
    if not isinstance(text, str) or not _DURATION.match(text):
        raise LocalProtocolError(
            f"time required {text!r} is not an ISO 8601 duration (examples: PT40M, PT1H30M)")
    return text
