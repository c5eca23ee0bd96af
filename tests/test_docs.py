"""A command or option that is not documented is a bug."""

import re
from pathlib import Path

import click

from cli.main import main

README = (Path(__file__).parents[1] / "README.md").read_text("utf-8")


def _commands(group: click.Group, prefix: str = ""):
    for name, cmd in group.commands.items():
        yield f"{prefix}{name}", cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix}{name} ")


def test_every_command_is_in_the_readme():
    missing = [name for name, cmd in _commands(main)
               if not isinstance(cmd, click.Group) and f"schoolmesh {name}" not in README]
    assert not missing, f"undocumented in README.md: {missing}"


def test_every_option_is_in_the_readme():
    missing = []
    for name, cmd in _commands(main):
        for p in cmd.params:
            if isinstance(p, click.Option):
                longs = [o for o in p.opts if o.startswith("--")]
                if longs and not any(re.search(re.escape(o) + r"\b", README) for o in longs):
                    missing.append(f"{name} {longs[0]}")
    assert not missing, f"options not in README.md: {missing}"


def test_docs_and_comments_point_only_inside_the_repository():
    """No reference to files outside the repository (a reader of a clone has only it)."""
    import re
    root = Path(__file__).parents[1]
    bad = []
    for p in [*root.glob("*.md"), *(root / "specs").rglob("*.md"), *(root / "docs").rglob("*.md"),
              *[f for d in ("node", "protocol", "cli", "crypto", "bench", "tests")
                for f in (root / d).rglob("*.py") if "node_modules" not in f.parts]]:
        text = p.read_text("utf-8")
        for m in re.finditer(r"\.\./shared|/work/shared|FACTS\.md|DESIGN\.md|STYLE\.md", text):
            if p.name != "test_docs.py":
                bad.append(f"{p.relative_to(root)}: {m.group(0)}")
    assert not bad, bad
