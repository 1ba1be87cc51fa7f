"""The product without its sandbox: nothing of runbook imports runbook_sandbox, and the two commands
that need it say, in one line and exit 2, how to install it when it (or moto) is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runbook.errors import EXIT_USAGE


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_cli_imports_nothing_of_the_sandbox():
    result = _python(
        "import runbook.cli, sys; assert not any(m.startswith('runbook_sandbox') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('runbook_sandbox'))"
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_no_module_of_the_product_imports_the_sandbox():
    """Every runbook.* module, imported: the product's dependency on the sandbox runs one way only."""
    result = _python(
        "import importlib, pkgutil, sys, runbook\n"
        "names = [m.name for m in pkgutil.walk_packages(runbook.__path__, 'runbook.') if m.name != 'runbook.__main__']\n"
        "for name in names:\n    importlib.import_module(name)\n"
        "assert len(names) > 10, names\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] == 'runbook_sandbox')\n"
        "assert not leaked, leaked\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("missing, named", [("runbook_sandbox", "runbook-sandbox"), ("moto", "moto")])
@pytest.mark.parametrize("argv", [["sandbox"], ["demo", "--yes"]])
def test_sandbox_commands_without_the_sandbox_say_how_to_install_it(missing, named, argv):
    # None in sys.modules: `import NAME` raises ModuleNotFoundError and find_spec(NAME) answers None,
    # as on an installation without that package.
    result = _python(
        f"import sys\nsys.modules[{missing!r}] = None\nsys.argv = ['runbook', *{argv!r}]\n"
        "from runbook.cli import main\nmain()\n"
    )
    assert result.returncode == EXIT_USAGE, (result.returncode, result.stderr[-2000:])
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"runbook: error: runbook {argv[0]} needs "), lines[0]
    assert named in lines[0] and "pip install -e . -e ./packaging/runbook-sandbox" in lines[0], lines[0]
