"""Every kustomize overlay in k8s/ renders and validates offline, and keeps the properties operations rely on.

Rendering uses `kubectl kustomize` (no cluster). Core kinds are validated with `kubernetes-validate` against the
Kubernetes OpenAPI schemas; operator kinds (SparkApplication, ScheduledSparkApplication, PyTorchJob) against the
openAPIV3Schema of their CRDs, read from ../shared/k8s-crds (or $PIVOT_K8S_CRDS) and never copied into the repo.
CRD schemas are made strict the way the API server treats them (unknown fields are errors, as with kubectl's
default `--validate=strict`), so a misspelt field fails here rather than being pruned silently on a cluster.
"""

from __future__ import annotations

import base64
import copy
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pivot_spark.config import PivotConfig, load_config
from pivot_spark.session import event_log_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = REPO_ROOT / "k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S_DIR / "overlays").glob("*/kustomization.yaml"))
K8S_VERSION = "1.32.0"  # the kubectl installed here; kubernetes-validate ships its schemas
OPERATOR_GROUPS = {"sparkoperator.k8s.io", "kubeflow.org"}
SECRET_NAME = "pivot-lake-credentials"
CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
SPARK_JOBS = {"ingest", "train_tokenizer", "annotate", "cooccur", "pivots", "score", "selection"}
CONFIG_PATH = "/etc/pivot-spark/pivot-spark.yaml"
HISTORY = "pivot-spark-history"
HISTORY_CLASS = "org.apache.spark.deploy.history.HistoryServer"

Obj = dict[str, Any]
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRD files are ~13,000 lines each


def crd_dir() -> Path:
    return Path(os.environ.get("PIVOT_K8S_CRDS") or REPO_ROOT.parent / "shared" / "k8s-crds")


@functools.cache
def render(overlay: str) -> tuple[Obj, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomize overlays")
    proc = subprocess.run([kubectl, "kustomize", str(K8S_DIR / "overlays" / overlay)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"kubectl kustomize k8s/overlays/{overlay} failed:\n{proc.stderr}"
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def of_kind(objs: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: tuple[Obj, ...], kind: str) -> Obj:
    found = of_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def api_group(obj: Obj) -> str:
    return obj["apiVersion"].rpartition("/")[0]


# ---- CRD schemas -------------------------------------------------------------------------------------------

def strict_schema(node: Any) -> Any:
    """A CRD structural schema as plain JSON Schema, with the API server's rules spelled out.

    `x-kubernetes-int-or-string` admits an integer or a string; an object with `properties` admits no other keys
    unless it says `x-kubernetes-preserve-unknown-fields`. Other x-kubernetes-* keys (list types, CEL rules) have
    no JSON Schema meaning and are dropped.
    """
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {name: strict_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = strict_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [strict_schema(sub) for sub in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if ("properties" in out and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validators() -> dict[tuple[str, str, str], jsonschema.protocols.Validator]:
    """(group, version, kind) -> a validator, for every CRD file in the shared folder."""
    folder = crd_dir()
    if not folder.is_dir():
        pytest.skip(f"CRD schemas not found at {folder} (set PIVOT_K8S_CRDS): operator kinds not validated")
    validators = {}
    for path in sorted(folder.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=YAML_LOADER)
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec["versions"]:
            schema = strict_schema(version["schema"]["openAPIV3Schema"])
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            validators[(spec["group"], version["name"], spec["names"]["kind"])] = cls(schema)
    return validators


def crd_errors(obj: Obj) -> list[str]:
    group, _, version = obj["apiVersion"].rpartition("/")
    validator = crd_validators().get((group, version, obj["kind"]))
    assert validator is not None, f"no CRD schema for {obj['apiVersion']} {obj['kind']} in {crd_dir()}"
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]


def core_errors(obj: Obj) -> list[str]:
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}"]
    return []


def pod_templates(obj: Obj) -> list[Obj]:
    """Pod templates embedded in operator kinds, as core PodTemplate objects for kubernetes-validate."""
    specs = obj["spec"].get("pytorchReplicaSpecs", {}) if obj["kind"] == "PyTorchJob" else {}
    return [{"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": f"{obj['metadata']['name']}-{role}"},
             "template": replica["template"]} for role, replica in specs.items()]


# ---- rendering and schema validation -----------------------------------------------------------------------

def test_there_are_overlays() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_whole_deployment(overlay: str) -> None:
    objs = render(overlay)
    kinds = {o["kind"] for o in objs}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "PersistentVolumeClaim",
            "SparkApplication", "ScheduledSparkApplication", "PyTorchJob", "Deployment", "Service"} <= kinds
    namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
    assert namespaces == {one(objs, "Namespace")["metadata"]["name"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_objects_validate(overlay: str) -> None:
    problems = {}
    for obj in render(overlay):
        if api_group(obj) in OPERATOR_GROUPS:
            continue
        if errors := core_errors(obj):
            problems[f"{obj['kind']}/{obj['metadata']['name']}"] = errors
    assert not problems, f"k8s {K8S_VERSION} schema violations: {problems}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operator_objects_validate_against_their_crds(overlay: str) -> None:
    problems = {}
    operator_objs = [o for o in render(overlay) if api_group(o) in OPERATOR_GROUPS]
    assert operator_objs
    for obj in operator_objs:
        errors = crd_errors(obj)
        for template in pod_templates(obj):
            errors += core_errors(template)
        if errors:
            problems[f"{obj['kind']}/{obj['metadata']['name']}"] = errors
    assert not problems, f"CRD schema violations: {problems}"


def test_crd_validation_rejects_broken_objects() -> None:
    """The validators are not vacuous: typical mistakes in each operator kind are caught."""
    objs = render(OVERLAYS[0])
    app = copy.deepcopy(of_kind(objs, "SparkApplication")[0])
    app["spec"]["driver"]["memroy"] = "4g"  # misspelt field
    app["spec"]["restartPolicy"]["type"] = "Sometimes"  # not in the enum
    errors = crd_errors(app)
    assert any("memroy" in e for e in errors) and any("Sometimes" in e for e in errors), errors

    scheduled = copy.deepcopy(one(objs, "ScheduledSparkApplication"))
    del scheduled["spec"]["schedule"]
    assert any("schedule" in e for e in crd_errors(scheduled))

    job = copy.deepcopy(one(objs, "PyTorchJob"))
    job["spec"]["elasticPolicy"]["minReplicas"] = "one"
    container = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    container["resources"]["limits"]["nvidia.com/gpu"] = [1]  # a quantity is an int or a string
    errors = crd_errors(job)
    assert any("minReplicas" in e for e in errors) and any("nvidia.com/gpu" in e for e in errors), errors

    pvc = copy.deepcopy(one(objs, "PersistentVolumeClaim"))
    pvc["spec"]["accessMode"] = ["ReadWriteOnce"]
    assert core_errors(pvc)


def test_int_or_string_fields_take_both() -> None:
    schema = strict_schema({"type": "object", "properties": {"port": {"x-kubernetes-int-or-string": True}}})
    validator = jsonschema.Draft7Validator(schema)
    assert validator.is_valid({"port": 8080}) and validator.is_valid({"port": "http"})
    assert not validator.is_valid({"port": 1.5}) and not validator.is_valid({"prot": 1})


# ---- what operations rely on -------------------------------------------------------------------------------

def spark_specs(objs: tuple[Obj, ...]) -> list[tuple[str, Obj]]:
    """(name, SparkApplication spec) for the one-off jobs and the scheduled rebuild's template."""
    specs = [(o["metadata"]["name"], o["spec"]) for o in of_kind(objs, "SparkApplication")]
    specs += [(o["metadata"]["name"], o["spec"]["template"]) for o in of_kind(objs, "ScheduledSparkApplication")]
    return specs


def by_name(objs: tuple[Obj, ...], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in of_kind(objs, kind)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_spark_application_per_job_each_with_an_entry_file(overlay: str) -> None:
    files = {}
    for name, spec in spark_specs(render(overlay)):
        main_file = spec["mainApplicationFile"]
        assert main_file.startswith("local:///opt/pivot-spark/jobs/"), (name, main_file)
        local = REPO_ROOT / "jobs" / Path(main_file).name
        assert local.is_file(), f"{name}: {main_file} has no {local.relative_to(REPO_ROOT)} (the image copies jobs/)"
        files[Path(main_file).stem] = spec
        assert spec["type"] == "Python" and spec["mode"] == "cluster"
        assert spec["arguments"][:2] == ["--config", CONFIG_PATH]
    assert set(files) == SPARK_JOBS | {"rebuild"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rebuild_is_scheduled_without_overlap_or_in_place_restarts(overlay: str) -> None:
    scheduled = one(render(overlay), "ScheduledSparkApplication")["spec"]
    assert scheduled["concurrencyPolicy"] == "Forbid"
    assert scheduled["template"]["restartPolicy"]["type"] == "Never"
    assert scheduled["template"]["mainApplicationFile"].endswith("/jobs/rebuild.py")
    fields = scheduled["schedule"].split()
    assert len(fields) == 5 and all(re.fullmatch(r"[\d*/,\-]+", f) for f in fields), scheduled["schedule"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rebuild_shares_the_jobs_runtime_settings(overlay: str) -> None:
    """The scheduled template repeats common.yaml by hand: the two must not drift apart."""
    specs = dict(spark_specs(render(overlay)))
    rebuild = specs.pop("pivot-rebuild")
    for name, spec in specs.items():
        for key in ("image", "sparkVersion", "sparkConf", "hadoopConf", "volumes"):
            assert spec[key] == rebuild[key], f"{name}.{key} differs from the rebuild's"
        for role in ("driver", "executor"):
            assert spec[role]["env"] == rebuild[role]["env"], f"{name}.{role}.env differs from the rebuild's"
        assert spec["driver"]["volumeMounts"] == rebuild["driver"]["volumeMounts"]
        assert spec["driver"]["serviceAccount"] == rebuild["driver"]["serviceAccount"]
        assert spec["driver"]["annotations"] == rebuild["driver"]["annotations"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_spark_jobs_have_delta_s3_and_their_config(overlay: str) -> None:
    objs = render(overlay)
    config_maps = by_name(objs, "ConfigMap")
    for name, spec in spark_specs(objs):
        assert spec["sparkConf"]["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension", name
        assert spec["hadoopConf"]["fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem", name
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = [m for m in spec["driver"]["volumeMounts"] if CONFIG_PATH.startswith(m["mountPath"] + "/")]
        assert len(mounts) == 1, f"{name}: {CONFIG_PATH} is not mounted in the driver"
        config_map = volumes[mounts[0]["name"]]["configMap"]["name"]
        assert config_map in config_maps, f"{name} mounts ConfigMap {config_map}, which the overlay lacks"
        assert Path(CONFIG_PATH).name in config_maps[config_map]["data"]
        assert spec["image"] != "pivot-spark", f"{name}: the overlay does not set the image"


def spark_config(objs: tuple[Obj, ...], tmp_path: Path) -> PivotConfig:
    """The pivot-spark config the jobs of a rendered overlay load (unknown keys or bad values fail here)."""
    found = [c for c in of_kind(objs, "ConfigMap") if Path(CONFIG_PATH).name in c.get("data", {})]
    assert len(found) == 1
    path = tmp_path / Path(CONFIG_PATH).name
    path.write_text(found[0]["data"][path.name])
    return load_config(str(path))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_lake_is_on_s3_in_a_valid_config(overlay: str, tmp_path: Path) -> None:
    objs = render(overlay)
    cfg = spark_config(objs, tmp_path)
    assert cfg.lake.uri.startswith("s3://"), cfg.lake.uri
    assert cfg.ingest.input and cfg.ingest.input.startswith("s3://")
    assert not {k for k in cfg.lake.storage_options if "SECRET" in k or "ACCESS_KEY" in k}, \
        "credentials belong in the Secret, not in the config"

    train_params = [c for c in of_kind(objs, "ConfigMap") if "PIVOT_LAKE" in c.get("data", {})]
    assert len(train_params) == 1
    assert train_params[0]["data"]["PIVOT_LAKE"] == cfg.lake.uri, "trainer and Spark jobs must use one lake"


def env_of(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_credentials_come_from_the_secret_only(overlay: str) -> None:
    objs = render(overlay)
    envs = {}
    for name, spec in spark_specs(objs):
        envs[f"{name}/driver"] = env_of(spec["driver"])
        envs[f"{name}/executor"] = env_of(spec["executor"])
    job = one(objs, "PyTorchJob")
    for container in job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]:
        envs[f"{job['metadata']['name']}/{container['name']}"] = env_of(container)
    history = by_name(objs, "Deployment")[HISTORY]
    for container in history["spec"]["template"]["spec"]["containers"]:
        envs[f"{HISTORY}/{container['name']}"] = env_of(container)

    secret_names = set()
    for where, env in envs.items():
        for key in CREDENTIAL_KEYS:
            assert key in env, f"{where} lacks {key}"
            assert "value" not in env[key], f"{where}: {key} is a literal, not a secretKeyRef"
            ref = env[key]["valueFrom"]["secretKeyRef"]
            assert ref["key"] == key
            secret_names.add(ref["name"])
    assert len(secret_names) == 1, secret_names
    (secret_name,) = secret_names
    assert secret_name.startswith(SECRET_NAME)

    secrets = by_name(objs, "Secret")
    if secret_name in secrets:  # generated from an example file: it must hold placeholders, never real keys
        data = {k: base64.b64decode(v).decode() for k, v in secrets[secret_name]["data"].items()}
        assert set(CREDENTIAL_KEYS) <= set(data)
        for key in CREDENTIAL_KEYS:
            assert data[key].startswith("REPLACE_ME"), f"{key} in the rendered Secret is not a placeholder"
    else:  # created out of band (docs/operations.md): the overlay must say so
        assert secret_name == SECRET_NAME
        text = (K8S_DIR / "overlays" / overlay / "kustomization.yaml").read_text()
        assert f"create secret generic {SECRET_NAME}" in text
    for secret in secrets.values():
        assert secret["metadata"]["name"] == secret_name, "an unexpected Secret in the overlay"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_training_job_is_elastic_on_gpus_and_resumes_from_a_volume(overlay: str) -> None:
    objs = render(overlay)
    job = one(objs, "PyTorchJob")
    name = job["metadata"]["name"]
    spec = job["spec"]
    assert len(name) + len("-worker-99") <= 63, "pod and service names derived from the job must stay <= 63"

    elastic = spec["elasticPolicy"]
    assert elastic["rdzvBackend"] == "c10d" and elastic["maxRestarts"] > 0
    assert elastic["rdzvId"] == name, "the rendezvous id must be this run's own (the job name)"
    assert spec["runPolicy"]["backoffLimit"] > 0

    worker = spec["pytorchReplicaSpecs"]["Worker"]
    assert set(spec["pytorchReplicaSpecs"]) == {"Worker"}, "elastic jobs run workers only"
    # A checkpoint resumes only with the world size that wrote it (training/checkpoint.py).
    assert elastic["minReplicas"] == elastic["maxReplicas"] == worker["replicas"] >= 1
    assert worker["restartPolicy"] in ("OnFailure", "ExitCode")
    pod = worker["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "pytorch"]
    assert container["image"] != "pivot-trainer", "the overlay does not set the trainer image"

    resources = container["resources"]
    gpus = resources["limits"]["nvidia.com/gpu"]
    assert int(gpus) >= 1 and resources["requests"]["nvidia.com/gpu"] == gpus

    argv = container["command"] + container["args"]
    assert argv[:3] == ["torchrun", "--no-python", "pivot-train"]
    assert "--resume" in argv
    out = argv[argv.index("--out") + 1]
    env = env_of(container)
    assert env["PIVOT_RUN_NAME"]["value"] == name, "checkpoints must be kept per run"
    assert out.endswith("/$(PIVOT_RUN_NAME)")

    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = [m for m in container["volumeMounts"] if out.startswith(m["mountPath"] + "/")]
    assert len(mount) == 1, f"--out {out} is not on a mounted volume"
    claim = volumes[mount[0]["name"]]["persistentVolumeClaim"]["claimName"]
    pvcs = by_name(objs, "PersistentVolumeClaim")
    assert claim in pvcs, f"checkpoint claim {claim} is not in the overlay"
    if elastic["maxReplicas"] > 1:
        assert "ReadWriteMany" in pvcs[claim]["spec"]["accessModes"], "pods on several nodes share checkpoints"

    # Every $(VAR) in the arguments is defined, from env or from a ConfigMap the overlay renders.
    config_maps = by_name(objs, "ConfigMap")
    defined = set(env)
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        assert ref in config_maps, f"envFrom ConfigMap {ref} is not in the overlay"
        defined |= set(config_maps[ref]["data"])
    used = {v for arg in container["args"] for v in re.findall(r"\$\((\w+)\)", arg)}
    assert used <= defined, f"undefined in the trainer's args: {used - defined}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_trainer_arguments_parse(overlay: str) -> None:
    """The container's arguments, with $(VAR) expanded as the kubelet does, are accepted by pivot-train."""
    from training.cli import parse_args

    objs = render(overlay)
    job = one(objs, "PyTorchJob")
    (container,) = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    values = {k: v["value"] for k, v in env_of(container).items() if "value" in v}
    config_maps = by_name(objs, "ConfigMap")
    for source in container.get("envFrom", []):
        values.update(config_maps[source["configMapRef"]["name"]]["data"])
    argv = [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in container["args"]]
    assert argv[:2] == ["--no-python", "pivot-train"]
    args = parse_args(argv[2:])
    assert args.resume and args.lake.startswith("s3://") and args.out == f"/checkpoints/{job['metadata']['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_run_names_are_distinct_per_overlay(overlay: str) -> None:
    names = {o: one(render(o), "PyTorchJob")["metadata"]["name"] for o in OVERLAYS}
    assert len(set(names.values())) == len(names), names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_accounts_and_driver_rbac(overlay: str) -> None:
    objs = render(overlay)
    accounts = set(by_name(objs, "ServiceAccount"))
    for name, spec in spark_specs(objs):
        assert spec["driver"]["serviceAccount"] in accounts, name
    job = one(objs, "PyTorchJob")
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["serviceAccountName"] in accounts

    driver_account = spark_specs(objs)[0][1]["driver"]["serviceAccount"]
    namespace = one(objs, "Namespace")["metadata"]["name"]
    roles = by_name(objs, "Role")
    granted = set()
    for binding in of_kind(objs, "RoleBinding"):
        if {"kind": "ServiceAccount", "name": driver_account, "namespace": namespace} in binding["subjects"]:
            for rule in roles[binding["roleRef"]["name"]]["rules"]:
                granted |= {(r, v) for r in rule["resources"] for v in rule["verbs"]}
    # The driver creates and removes its executor pods and their services and config maps.
    for resource in ("pods", "services", "configmaps"):
        for verb in ("create", "get", "list", "watch", "delete"):
            assert (resource, verb) in granted, f"driver account may not {verb} {resource}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_run_once_objects_carry_the_job_label(overlay: str) -> None:
    """`kubectl apply -l 'app.kubernetes.io/component!=job'` sets everything up without starting a job."""
    for obj in render(overlay):
        is_job = obj["kind"] in ("SparkApplication", "PyTorchJob")
        label = obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        assert (label == "job") == is_job, f"{obj['kind']}/{obj['metadata']['name']}: component={label}"


# ---- observability: metrics and the History Server ---------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_spark_drivers_expose_prometheus_metrics_and_invite_a_scrape(overlay: str) -> None:
    for name, spec in spark_specs(render(overlay)):
        conf = spec["sparkConf"]
        assert conf["spark.ui.prometheus.enabled"] == "true", name
        assert conf["spark.metrics.conf.*.sink.prometheusServlet.class"] == \
            "org.apache.spark.metrics.sink.PrometheusServlet", name
        servlet_path = conf["spark.metrics.conf.*.sink.prometheusServlet.path"]
        assert conf.get("spark.ui.enabled", "true") == "true", f"{name}: the metrics are served by the UI"
        notes = spec["driver"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true", name
        assert notes["prometheus.io/port"] == conf.get("spark.ui.port", "4040"), name
        assert notes["prometheus.io/path"].rstrip("/") == servlet_path.rstrip("/"), name


def spark_properties(text: str) -> dict[str, str]:
    """A Spark properties file (``key value`` or ``key=value`` lines, ``#`` comments)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = re.split(r"\s*=\s*|\s+", line, maxsplit=1)
            out[key] = value.strip()
    return out


def history_server(objs: tuple[Obj, ...]) -> tuple[Obj, Obj, dict[str, str]]:
    """(Deployment, its container, its Spark properties) of the History Server in a rendered overlay."""
    deployment = by_name(objs, "Deployment")[HISTORY]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    argv = container["command"] + container.get("args", [])
    assert HISTORY_CLASS in argv, argv
    props_path = argv[argv.index("--properties-file") + 1]
    (mount,) = [m for m in container["volumeMounts"] if props_path.startswith(m["mountPath"] + "/")]
    volume = {v["name"]: v for v in pod["volumes"]}[mount["name"]]
    config_map = by_name(objs, "ConfigMap")[volume["configMap"]["name"]]
    return deployment, container, spark_properties(config_map["data"][Path(props_path).name])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_history_server_reads_the_event_logs_the_jobs_write(overlay: str, tmp_path: Path) -> None:
    objs = render(overlay)
    cfg = spark_config(objs, tmp_path)
    written = event_log_dir(cfg)
    assert written is not None, "event logs are off in the cluster config: the History Server would show nothing"
    deployment, container, props = history_server(objs)
    assert props["spark.history.fs.logDirectory"] == written
    # the same store as the jobs: every S3A setting of the jobs (but how they upload) reaches the History Server
    for name, spec in spark_specs(objs):
        for key, value in spec["hadoopConf"].items():
            if key != "fs.s3a.fast.upload":
                assert props.get(f"spark.hadoop.{key}") == value, f"{name}: {key} differs in the History Server"
        assert container["image"] == spec["image"], "the History Server runs the jobs' Spark (and S3A jars)"
    assert deployment["spec"]["replicas"] == 1  # a second one would only read the same logs again


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_history_server_is_reachable_through_its_service(overlay: str) -> None:
    objs = render(overlay)
    deployment, container, props = history_server(objs)
    service = by_name(objs, "Service")[HISTORY]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (port,) = service["spec"]["ports"]
    assert ports[port["targetPort"]] == int(props.get("spark.history.ui.port", "18080"))
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == port["targetPort"], probe
