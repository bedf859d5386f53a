"""The lock file (requirements/app.txt) agrees with pyproject.toml: every dependency of the package and of the
spark, train and dev extras is pinned at a version its range allows, with hashes; torch is the CPU build. A
dependency added to pyproject.toml without `make lock` fails here. Also: where scripts/torch-cpu.sh takes torch's
CPU build from."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from pivot_spark import __version__
from pivot_spark.config import REPO_ROOT

LOCK = REPO_ROOT / "requirements" / "app.txt"
EXTRAS = ("spark", "train", "dev")


def locked() -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, hashes) of every entry of the lock file."""
    out: dict[str, tuple[Version, list[str]]] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8")):
        m = re.match(r"([A-Za-z0-9._-]+)==(\S+)", entry)
        if m:
            out[canonicalize_name(m[1])] = (Version(m[2]), re.findall(r"--hash=sha256:([0-9a-f]{64})", entry))
    return out


def test_every_dependency_is_pinned_within_its_range_with_hashes():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = locked()
    assert len(pins) > 50 and all(hashes for _, hashes in pins.values())
    reqs = [Requirement(r) for r in project["dependencies"]]
    reqs += [Requirement(r) for extra in EXTRAS for r in project["optional-dependencies"][extra]]
    for req in reqs:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in {LOCK.name}: run make lock"
        assert req.specifier.contains(pins[name][0], prereleases=True), \
            f"{req}: {LOCK.name} pins {pins[name][0]}: run make lock"


def test_torch_is_the_cpu_build_and_the_build_backend_is_locked():
    pins = locked()
    assert pins["torch"][0].local == "cpu" and len(pins["torch"][1]) >= 1
    assert "setuptools" in pins and "wheel" in pins  # the editable install builds without isolation
    assert "fasttext-predict" not in pins  # its `fasttext` module would replace fasttext-numpy2's
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == __version__


def torch_source(env: dict[str, str]) -> str:
    script = "source scripts/torch-cpu.sh; torch_cpu_source \"$PY\"; echo \"${TORCH_CPU_ARGS[*]}\""
    return subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, env={**env, "PY": sys.executable},
                          capture_output=True, text=True, check=True).stdout.strip()


def test_torch_cpu_source_find_links_folder_with_the_wheel_else_the_pytorch_cpu_index(tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    base["PIP_CONFIG_FILE"] = os.devnull  # no pip configuration files
    want = str(locked()["torch"][0])
    assert torch_source(base) == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert torch_source({**base, "PIVOT_TORCH_INDEX": "https://mirror/whl/cpu"}) == \
        "--extra-index-url https://mirror/whl/cpu"
    (tmp_path / f"torch-{want}-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    assert torch_source({**base, "PIP_FIND_LINKS": str(tmp_path)}) == f"--find-links {tmp_path}"
    other = tmp_path / "other"
    other.mkdir()
    (other / "torch-2.0.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    assert torch_source({**base, "PIP_FIND_LINKS": str(other)}).startswith("--extra-index-url")
