"""The PyTorchJob reads one train_set version: a pod restarted after the nightly select resumes on the version
its checkpoints were made from."""

from __future__ import annotations

import re

import pytest

from tests.deploy.test_k8s_manifests import OVERLAYS, by_name, env_of, one, render


def _container(objs):
    job = one(objs, "PyTorchJob")
    (container,) = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_training_job_pins_a_train_set_version(overlay: str) -> None:
    objs = render(overlay)
    container = _container(objs)
    args = container["args"]
    assert args[args.index("--table-version") + 1] == "$(PIVOT_TRAIN_SET_VERSION)"
    values = {k: v["value"] for k, v in env_of(container).items() if "value" in v}
    for source in container.get("envFrom", []):
        values.update(by_name(objs, "ConfigMap")[source["configMapRef"]["name"]]["data"])
    assert re.fullmatch(r"\d+", values["PIVOT_TRAIN_SET_VERSION"]), "each overlay sets a version number"

    from training.cli import parse_args

    argv = [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in args]
    assert parse_args(argv[2:]).table_version == int(values["PIVOT_TRAIN_SET_VERSION"])
