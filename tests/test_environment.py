"""environment.yml, pyproject.toml and the constraints file describe one environment."""

import re
import sys
import tomllib

import yaml

from repro import paths

ROOT = paths.project_root()


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if m := re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line):
            pins[re.sub(r"\[.*\]", "", m.group(1)).lower().replace("_", "-")] = m.group(2)
    return pins


def test_every_dependency_is_pinned_and_agrees_with_the_constraints():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    constraints = _pins((ROOT / "requirements" / "constraints.txt").read_text().splitlines())
    declared = list(project["dependencies"]) + [d for extra in ("dev",) for d in project["optional-dependencies"][extra]]
    pins = _pins(declared)
    assert len(pins) == len(declared), "every dependency in pyproject.toml is pinned with =="
    for name, version in pins.items():
        assert constraints.get(name) == version, f"{name}: pyproject {version} vs constraints {constraints.get(name)}"
    assert constraints["torch"] == "2.13.0" and constraints["jupyter-book"].startswith("1.")
    assert "vllm" in project["optional-dependencies"]


def test_environment_yml_installs_the_same_package_with_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11" in requires and "<3.12" in requires
    [pip] = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert "-c requirements/constraints.txt" in pip and "-e .[dev]" in pip
    assert sys.version_info[:2] == (3, 11)


def test_the_makefile_and_ci_use_the_same_constraints_and_the_readme_commands():
    makefile = (ROOT / "Makefile").read_text()
    assert "-c requirements/constraints.txt" in makefile and "ipykernel install" in makefile
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_importing_repro_is_cheap_and_never_imports_vllm():
    import subprocess

    code = "import sys, repro, repro.runs, repro.world; print(sorted(m for m in ('vllm', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


GROUPING_CONFTEST = """
import importlib.util, os, pytest
spec = importlib.util.spec_from_file_location("project_conftest", {conftest!r})
project = importlib.util.module_from_spec(spec)
spec.loader.exec_module(project)
pytest_collection_modifyitems = project.pytest_collection_modifyitems

@pytest.fixture(scope="session")
def smoke_book():
    with open("built", "a") as f:  # once per worker that builds it
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")

@pytest.fixture(scope="session")
def smoke_html(smoke_book):
    pass
"""
GROUPING_TESTS = """
import os, time, pytest
@pytest.mark.parametrize("i", range(4))
def test_book(smoke_book, i):
    time.sleep(0.1)
@pytest.mark.parametrize("i", range(4))
def test_html(smoke_html, i):
    time.sleep(0.1)
@pytest.mark.parametrize("i", range(8))
def test_other(i):
    from repro.runs.parallel import cores
    assert os.environ["OMP_NUM_THREADS"] == str(max(1, cores() // 2))  # each worker: its share of the cores
    time.sleep(0.1)
"""


def test_make_tests_smoke_book_users_run_in_one_xdist_worker(tmp_path):
    """`make test`'s two workers: every test that uses the smoke book goes to one worker, which executes the
    book once (a pytest that breaks xdist's groups, as 9.2 does, would have both workers execute it); each
    worker's threads are capped at its share of the cores."""
    import subprocess

    (tmp_path / "conftest.py").write_text(GROUPING_CONFTEST.format(conftest=str(ROOT / "tests" / "conftest.py")))
    (tmp_path / "test_grouping.py").write_text(GROUPING_TESTS)
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist",
                          "loadgroup", "-v", "."], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:]
    assert (tmp_path / "built").read_text().count("\n") == 1, out.stdout[-2000:]
    passed = [line.split() for line in out.stdout.splitlines() if line.startswith("[gw") and "PASSED" in line]
    assert len(passed) == 16 and len({worker for worker, *_, test in passed if "::test_other" not in test}) == 1
