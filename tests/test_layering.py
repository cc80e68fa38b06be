"""The architecture as tests: layers import only downwards, docs match the code, the README drives CI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> packages it must never import
FORBIDDEN = {
    "local_models": {"tools", "assistant", "langchain", "langchain_core", "textual"},
    "tools": {"assistant", "textual"},
    "assistant": {"textual"},  # only assistant/app/ may import Textual
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_downwards(package: str):
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        if package == "assistant" and "app" in path.relative_to(ROOT / package).parts[:1]:
            continue
        bad = _imports(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


def test_headless_parts_import_without_textual():
    code = ("import sys, assistant, assistant.cli, assistant.config, tools.importer, tools.status; "
            "print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_schema_doc_is_current():
    from tools import schema

    assert (ROOT / "docs" / "schema.md").read_text(encoding="utf-8").strip() == schema.markdown().strip()


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    block = lines[lines.index("```bash") + 1: lines.index("```", lines.index("```bash") + 1)]
    commands = [ln for ln in block if not ln.startswith("#")]
    assert len(commands) == 2
    assert commands[0].endswith("shopkeeper demo") and "pytest" in commands[1]
    assert "grep -A1 -m1 '^# (b)' README.md" in (ROOT / ".ci" / "run").read_text()
