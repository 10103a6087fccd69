"""Static checks of everything under infra/: no cluster, no Docker, no network.

What matters on a cluster is checked field by field: one Ray version everywhere (the pyproject pin), GPUs
requested where the reward models run, a head that does no work, entrypoints that the job CLI accepts,
credentials only by reference, Ray token authentication on every cluster and for every client we ship, and
retry settings that pair with crash resume.
"""

import copy
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
KUBERAY = INFRA / "kuberay"
YAML_FILES = sorted(p for p in INFRA.rglob("*") if p.suffix in (".yaml", ".yml"))
SECRET_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN", "RAY_AUTH_TOKEN"}
RAY_TOKEN_SECRET = {"name": "vidscore-ray-token", "key": "auth_token"}  # created by the user, never a manifest


def ray_pin() -> str:
    """The X in `ray[data]==X` from pyproject.toml: the one Ray version every image and cluster must run."""
    match = re.search(r'"ray\[[^\]]*\]==([0-9][0-9.]*)"', (ROOT / "pyproject.toml").read_text())
    assert match, "pyproject.toml must pin ray[data]==X"
    return match.group(1)


RAY = ray_pin()


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in YAML_FILES for d in docs(p)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in all_docs() if d.get("kind") == kind]


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping inside a YAML document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def cluster_specs() -> list[tuple[str, dict[str, Any]]]:
    """(name, RayCluster spec) for every RayCluster and every RayJob's embedded cluster."""
    specs = [(d["metadata"]["name"], d["spec"]) for d in of_kind("RayCluster")]
    specs += [(d["metadata"]["name"], d["spec"]["rayClusterSpec"]) for d in of_kind("RayJob")]
    assert specs, "infra/kuberay must define a RayJob and a RayCluster"
    return specs


def containers(pod_template: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_template["spec"]["containers"]


def nightly():
    """infra/kuberay/nightly.py as a module (infra/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("vidscore_nightly", KUBERAY / "nightly.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- every file parses ------------------------------------------------------------------------------------


def test_infra_has_the_expected_files() -> None:
    for name in (
        "docker/Dockerfile",
        "docker/Dockerfile.dockerignore",
        "kuberay/rayjob-score.yaml",
        "kuberay/raycluster.yaml",
        "kuberay/nightly-cronjob.yaml",
        "kuberay/secret-example.yaml",
        "kuberay/score-config.yaml",
        "aws/cluster.yaml",
        "runtime_env.yaml",
    ):
        assert (INFRA / name).is_file(), name


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_yaml_parses(path: Path) -> None:
    parsed = docs(path)
    assert parsed and all(isinstance(d, dict) for d in parsed)


def test_kubernetes_objects_have_kind_and_name() -> None:
    for path, doc in all_docs():
        if "apiVersion" in doc and doc.get("kind") != "Kustomization":
            assert doc.get("kind") and doc.get("metadata", {}).get("name"), path


# --- one Ray version everywhere -----------------------------------------------------------------------------


def image_refs() -> list[tuple[str, str]]:
    refs = []
    for path, doc in all_docs():
        for node in walk(doc):
            for key in ("image", "head_image", "worker_image"):
                if isinstance(node.get(key), str):
                    refs.append((str(path.relative_to(INFRA)), node[key]))
    return refs


def test_every_image_runs_the_pinned_ray() -> None:
    refs = image_refs()
    assert len(refs) >= 5
    for where, ref in refs:
        name, _, tag = ref.rpartition(":")
        assert name and "/" not in tag, f"{where}: {ref} has no tag"
        if name.endswith("rayproject/ray"):
            assert tag.startswith(f"{RAY}-"), f"{where}: {ref} is not Ray {RAY}"
        else:
            assert f"-ray{RAY}" in tag, f"{where}: {ref}: tag the vidscore image `...-ray{RAY}` (pyproject pin)"


def test_ray_version_fields_match_the_pin() -> None:
    for name, spec in cluster_specs():
        assert spec["rayVersion"] == RAY, name


def dockerfile_from() -> str:
    text = (INFRA / "docker/Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text.split("\nFROM ")[0], re.M))
    line = re.search(r"^FROM (\S+)", text, re.M).group(1)
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], line)


def test_dockerfile_base_is_the_pinned_ray_with_cuda() -> None:
    assert re.fullmatch(rf"rayproject/ray:{re.escape(RAY)}-py3\d+-cu\d+", dockerfile_from())


def test_dockerfile_is_non_root_caches_weights_on_a_volume_and_installs_the_gpu_extra() -> None:
    text = (INFRA / "docker/Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0", "0:0"), "the image must end as a non-root user"
    assert re.search(r"^ENV HF_HOME=/models/hf\b", text, re.M)
    run_lines = " ".join(re.findall(r"^RUN (.+?)(?<!\\)$", text, re.M | re.S))
    for download in ("snapshot_download", "from_pretrained", "huggingface-cli", "hf download", "git lfs", "hf.co"):
        assert download not in run_lines, f"weights must not be baked into the image ({download})"
    assert '".[gpu]"' in text and "--no-build-isolation" in text
    assert "shm" in text


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (INFRA / "docker/Dockerfile.dockerignore").read_text().split()
    assert "*" in lines and {"!pipeline/", "!operators/", "!jobs/", "!schemas/", "!pyproject.toml"} <= set(lines)


def test_the_image_gets_every_folder_the_package_installs() -> None:
    """`pip install .` in the image needs each folder pyproject maps into the vidscore package (vidscore/ too)."""
    import tomllib

    folders = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values())
    assert folders == {"vidscore", "pipeline", "operators", "jobs", "schemas"}
    copied = set(re.findall(r"^COPY \S+ (\w+) \./\1$", (INFRA / "docker/Dockerfile").read_text(), re.M))
    allowed = {line[1:].rstrip("/") for line in (INFRA / "docker/Dockerfile.dockerignore").read_text().split()}
    assert folders <= copied and folders <= allowed, (folders - copied, folders - allowed)


# --- cluster shape ----------------------------------------------------------------------------------------


def test_head_does_no_work() -> None:
    for name, spec in cluster_specs():
        assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0", name


def gpu_limit(group: dict[str, Any]) -> int:
    return max(
        int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)) for c in containers(group["template"])
    )


def test_gpu_group_requests_gpus_and_cpu_group_does_not() -> None:
    for name, spec in cluster_specs():
        groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
        assert gpu_limit(groups["gpu-score"]) >= 1, name
        assert gpu_limit(groups["cpu-decode"]) == 0, name
        for group in groups.values():
            assert group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"], (name, group["groupName"])


def test_every_ray_pod_has_a_memory_backed_dev_shm() -> None:
    for name, spec in cluster_specs():
        for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
            volumes = {v["name"]: v for v in group["template"]["spec"]["volumes"]}
            for container in containers(group["template"]):
                mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
                assert "/dev/shm" in mounts, (name, container["name"])
                assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory", name


def test_model_cache_is_a_volume_where_models_load() -> None:
    for name, spec in cluster_specs():
        for group in [spec["headGroupSpec"], *(g for g in spec["workerGroupSpecs"] if gpu_limit(g))]:
            mounts = {m["mountPath"] for c in containers(group["template"]) for m in c.get("volumeMounts", [])}
            assert "/models" in mounts, name


# --- jobs: entrypoints, config, retries ---------------------------------------------------------------------


def check_entrypoint(entrypoint: str) -> Any:
    """`python -m vidscore.jobs.X ARGS`: jobs/X.py exists and its CLI accepts ARGS; for the score job, the config
    the entrypoint names (mounted from infra/kuberay/score-config.yaml) merges into a valid run."""
    tokens = shlex.split(entrypoint)
    assert tokens[:2] == ["python", "-m"] and tokens[2].startswith("vidscore.jobs."), entrypoint
    module = tokens[2].split(".", 2)[2]
    assert (ROOT / "jobs" / f"{module}.py").is_file(), f"jobs/{module}.py does not exist"
    assert module == "score", "only the score job is deployed; extend this check for others"
    import vidscore.jobs.score
    from vidscore.operators.scorers import SCORERS
    from vidscore.pipeline.config import load_yaml, merge, parse_scorer

    args = vidscore.jobs.score.parser().parse_args(tokens[3:])
    assert args.config == "/etc/vidscore/score.yaml"
    cli = {"input": args.input, "output": args.output, "scorers": [parse_scorer(s) for s in args.scorers or []] or None}
    cfg = merge(load_yaml(str(KUBERAY / "score-config.yaml")), cli)
    assert {s.name for s in cfg.scorers} <= set(SCORERS)
    return cfg


def test_rayjob_entrypoint_runs_the_score_job_with_the_deployed_config() -> None:
    (job,) = of_kind("RayJob")
    cfg = check_entrypoint(job["spec"]["entrypoint"])
    assert cfg.input.startswith("s3://") and cfg.output.startswith("s3://")
    assert [s.name for s in cfg.scorers] == ["videoscore", "mjvideo"]
    assert cfg.scorers[0].checkpoint == "TIGER-Lab/VideoScore"


def test_score_config_is_mounted_where_the_entrypoint_reads_it() -> None:
    kustomization = docs(KUBERAY / "kustomization.yaml")[0]
    generated = {g["name"]: g["files"] for g in kustomization["configMapGenerator"]}
    assert "score.yaml=score-config.yaml" in generated["vidscore-score-config"]
    for name, spec in cluster_specs():
        head = spec["headGroupSpec"]["template"]
        volumes = {v["name"]: v for v in head["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in containers(head)[0]["volumeMounts"]}
        assert volumes[mounts["/etc/vidscore"]]["configMap"]["name"] == "vidscore-score-config", name


def test_kustomization_refers_to_existing_files() -> None:
    kustomization = docs(KUBERAY / "kustomization.yaml")[0]
    names = list(kustomization["resources"])
    names += [f.split("=")[-1] for g in kustomization["configMapGenerator"] for f in g["files"]]
    for name in names:
        assert (KUBERAY / name).is_file(), name


def test_rayjob_retries_pair_with_crash_resume_and_clean_up() -> None:
    (job,) = of_kind("RayJob")
    spec = job["spec"]
    assert spec["backoffLimit"] >= 1 and spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0 and spec["activeDeadlineSeconds"] > 0
    assert spec["submissionMode"] == "K8sJobMode"
    assert yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]["HF_HOME"] == "/models/hf"


def test_nightly_cronjob_forbids_overlap_and_submits_a_dated_score_run() -> None:
    (cron,) = of_kind("CronJob")
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert len(spec["schedule"].split()) == 5
    job_spec = spec["jobTemplate"]["spec"]
    pod = job_spec["template"]["spec"]
    assert job_spec["backoffLimit"] >= 1 and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:2] == ["python", "/etc/vidscore-nightly/nightly.py"]
    args = nightly().parser().parse_args(command[2:])
    template = docs(KUBERAY / Path(args.template).name)[0]
    module = nightly()
    job = module.render(template, module.run_date("2026-03-04"), args.input, args.output)
    cfg = check_entrypoint(job["spec"]["entrypoint"])
    # Each night reads that day's dump into the one score table (the sink adds a run_date= partition).
    assert "2026-03-04" in cfg.input and cfg.output == "s3://my-bucket/scores/"
    assert job["metadata"]["name"] == "vidscore-nightly-20260304"
    assert_rayjob_authenticates(job)  # the rendered RayJob keeps token auth, its submitter and authOptions
    # The submitter may create and read RayJobs, nothing else.
    (role,) = of_kind("Role")
    assert role["rules"] == [
        {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list", "watch"]}
    ]
    assert pod["serviceAccountName"] == role["metadata"]["name"]


# --- credentials ------------------------------------------------------------------------------------------


def test_credentials_are_referenced_never_inlined() -> None:
    (secret,) = of_kind("Secret")
    for key, value in secret["stringData"].items():
        if key in SECRET_ENV:
            assert re.fullmatch(r"<[^>]+>", value), f"secret-example.yaml: {key} must stay a <placeholder>"
    for path, doc in all_docs():
        if doc.get("kind") == "Secret":
            continue
        for node in walk(doc):
            if node.get("name") in SECRET_ENV:
                assert "value" not in node, f"{path}: {node['name']} must come from a Secret (valueFrom/envFrom)"
            assert not (SECRET_ENV & set(node)), f"{path}: credential key inlined"
    for name, spec in cluster_specs():
        for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
            for container in containers(group["template"]):
                refs = [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
                assert refs == [secret["metadata"]["name"]], (name, container["name"])


def test_no_key_material_anywhere_in_infra() -> None:
    for path in INFRA.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text), path
            assert not re.search(r"\bhf_[A-Za-z0-9]{30,}\b", text), path
            assert not re.search(r"aws_secret_access_key\s*[:=]\s*['\"]?[A-Za-z0-9/+]{40}", text, re.I), path


# --- token authentication ---------------------------------------------------------------------------------


def rayjob_pod_templates(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, pod template) for a RayJob's head, worker groups and submitter."""
    name, spec = job["metadata"]["name"], job["spec"]
    return [*cluster_pod_templates(name, spec["rayClusterSpec"]), (f"{name}/submitter", spec["submitterPodTemplate"])]


def cluster_pod_templates(name: str, spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    groups = [(f"{name}/head", spec["headGroupSpec"]["template"])]
    return groups + [(f"{name}/{g['groupName']}", g["template"]) for g in spec["workerGroupSpecs"]]


def ray_pod_templates() -> list[tuple[str, dict[str, Any]]]:
    """Every pod that runs Ray or talks to it: each RayCluster's groups and each RayJob's groups and submitter."""
    pods = [p for d in of_kind("RayCluster") for p in cluster_pod_templates(d["metadata"]["name"], d["spec"])]
    return pods + [p for job in of_kind("RayJob") for p in rayjob_pod_templates(job)]


def assert_token_auth(where: str, env: list[dict[str, Any]]) -> None:
    """RAY_AUTH_MODE=token and RAY_AUTH_TOKEN from the Secret, each exactly once (a later duplicate would win)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for var in env:
        by_name.setdefault(var["name"], []).append(var)
    assert by_name.get("RAY_AUTH_MODE") == [{"name": "RAY_AUTH_MODE", "value": "token"}], where
    token = [{"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": RAY_TOKEN_SECRET}}]
    assert by_name.get("RAY_AUTH_TOKEN") == token, (
        f"{where}: RAY_AUTH_TOKEN must come from the Secret {RAY_TOKEN_SECRET}"
    )


def assert_rayjob_authenticates(job: dict[str, Any]) -> None:
    for where, template in rayjob_pod_templates(job):
        for container in containers(template):
            assert_token_auth(f"{where}/{container['name']}", container.get("env", []))
    spec = job["spec"]
    # The operator polls the job's status on the dashboard; only authOptions makes it send the token, and only
    # secretName makes it the token in our Secret (KubeRay >= 1.6.0). Without it the RayJob ends Failed.
    assert spec["rayClusterSpec"]["authOptions"] == {"mode": "token", "secretName": RAY_TOKEN_SECRET["name"]}


def test_every_ray_container_runs_token_auth_from_the_secret() -> None:
    pods = ray_pod_templates()
    assert {where.rsplit("/", 1)[1] for where, _ in pods} >= {"head", "cpu-decode", "gpu-score", "submitter"}
    assert {where.split("/")[0] for where, _ in pods} >= {"vidscore", "vidscore-score"}
    for where, template in pods:
        for container in containers(template) + template["spec"].get("initContainers", []):
            assert_token_auth(f"{where}/{container['name']}", container.get("env", []))


def test_the_autoscaler_sidecar_gets_the_token() -> None:
    """KubeRay's autoscaler container does not inherit the head's env, only autoscalerOptions.env."""
    autoscaled = [(name, spec) for name, spec in cluster_specs() if spec.get("enableInTreeAutoscaling")]
    assert autoscaled, "raycluster.yaml autoscales; this check must see it"
    for name, spec in autoscaled:
        assert_token_auth(f"{name}/autoscaler", spec.get("autoscalerOptions", {}).get("env", []))


def test_rayjob_submitter_and_operator_authenticate() -> None:
    (job,) = of_kind("RayJob")
    assert_rayjob_authenticates(job)
    spec = job["spec"]
    submitter = spec["submitterPodTemplate"]["spec"]
    assert submitter["restartPolicy"] == "Never", "the submitter is a Kubernetes Job's pod"
    (head,) = containers(spec["rayClusterSpec"]["headGroupSpec"]["template"])
    assert [c["image"] for c in submitter["containers"]] == [head["image"]], "the submitter's Ray CLI is the head's"
    assert "command" not in submitter["containers"][0], "KubeRay fills in `ray job submit` when command is unset"


def test_the_token_secret_is_created_by_the_user_and_documented() -> None:
    assert RAY_TOKEN_SECRET["name"] not in {d["metadata"]["name"] for d in of_kind("Secret")}, (
        "no manifest for the Ray token Secret: a placeholder token applied by mistake is a known password"
    )
    create = f"kubectl create secret generic {RAY_TOKEN_SECRET['name']} --from-literal={RAY_TOKEN_SECRET['key']}="
    assert create in (KUBERAY / "secret-example.yaml").read_text()
    assert create in " ".join((INFRA / "README.md").read_text().split())
    read = f"kubectl get secret {RAY_TOKEN_SECRET['name']} -o jsonpath='{{.data.{RAY_TOKEN_SECRET['key']}}}'"
    for path in (KUBERAY / "raycluster.yaml", INFRA / "README.md"):
        text = path.read_text()
        assert read in text and "export RAY_AUTH_MODE=token" in text, path


def env_at_ray_start(line: str) -> dict[str, str] | None:
    """The variables `ray start` runs with in one launcher command (each command is its own shell): `export`s
    earlier on the line plus `VAR=value` prefixes of `ray start` itself. None if the line starts no Ray."""
    env: dict[str, str] = {}
    for part in re.split(r"\s*(?:;|&&|\|\||\n)\s*", line):
        tokens = shlex.split(part)
        if tokens[:1] == ["export"]:
            env.update(tok.split("=", 1) for tok in tokens[1:] if "=" in tok)
            continue
        prefix = {}
        while tokens and re.fullmatch(r"[A-Za-z_]\w*=.*", tokens[0]):
            key, value = tokens.pop(0).split("=", 1)
            prefix[key] = value
        if tokens[:2] == ["ray", "start"]:
            return {**env, **prefix}
    return None


@pytest.mark.parametrize(
    ("line", "env"),
    [
        ("ulimit -n 9; export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=~/t; ray start --head", "token ~/t"),
        ("RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=/t ray start --address=h:6379", "token /t"),
        ("ulimit -n 9; ray start --address=h:6379", "None None"),
        ("RAY_AUTH_MODE=token true; RAY_AUTH_TOKEN_PATH=/t ray start", "None /t"),  # a prefix binds one command
        ("ray stop", None),
    ],
)
def test_env_at_ray_start_reads_the_shell_line(line: str, env: str | None) -> None:
    found = env_at_ray_start(line)
    assert (found if found is None else f"{found.get('RAY_AUTH_MODE')} {found.get('RAY_AUTH_TOKEN_PATH')}") == env


def test_aws_cluster_runs_token_auth_from_a_mounted_token_file() -> None:
    config = docs(INFRA / "aws/cluster.yaml")[0]
    paths = set()
    for key in [k for k in config if k.endswith("_commands")]:
        starts = [env for env in map(env_at_ray_start, config[key] or []) if env is not None]
        if key in ("head_start_ray_commands", "worker_start_ray_commands"):
            assert starts, f"{key} starts no Ray"
        for env in starts:
            assert env.get("RAY_AUTH_MODE") == "token", f"{key}: `ray start` without RAY_AUTH_MODE=token"
            assert "RAY_AUTH_TOKEN" not in env, f"{key}: the token comes from the mounted file, never inline"
            paths.add(env.get("RAY_AUTH_TOKEN_PATH"))
    (path,) = paths  # head and workers read the same file
    assert path in config["file_mounts"], f"RAY_AUTH_TOKEN_PATH={path} is not a file_mounts target"
    # The file `ray get-auth-token --generate` writes, which a client on the same machine reads by default.
    assert config["file_mounts"][path] == "~/.ray/auth_token"


OPT_OUT = re.compile(r"""RAY_AUTH_MODE['"\]]*\s*[=:,]\s*(?:value\s*[=:]\s*)?['"]?disabled\b""", re.I)


def auth_opt_outs(path: Path, text: str) -> list[str]:
    """Places in one file that turn Ray token auth off: `RAY_AUTH_MODE=disabled` in any spelling on one line,
    and in YAML any env entry or env mapping that sets RAY_AUTH_MODE to anything but token."""
    found = [m.group(0) for m in OPT_OUT.finditer(text)]
    if path.suffix in (".yaml", ".yml"):
        try:
            parsed = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            parsed = []
        for node in walk(parsed):
            if node.get("name") == "RAY_AUTH_MODE" and "value" in node:
                found += [] if str(node["value"]).strip().lower() == "token" else [str(node)]
            if "RAY_AUTH_MODE" in node:
                found += [] if str(node["RAY_AUTH_MODE"]).strip().lower() == "token" else [str(node)]
    return found


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Makefile", "test:\n\tRAY_AUTH_MODE=disabled pytest\n"),
        ("x.py", 'os.environ["RAY_AUTH_MODE"] = "disabled"\n'),
        ("x.py", 'monkeypatch.setenv("RAY_AUTH_MODE", "Disabled")\n'),
        ("x.yaml", "env:\n  - name: RAY_AUTH_MODE\n    value: disabled\n"),
        ("x.yaml", "env: [{name: RAY_AUTH_MODE, value: disabled}]\n"),
        ("x.yaml", "env_vars:\n  RAY_AUTH_MODE:\n    disabled\n"),
    ],
)
def test_auth_opt_out_check_catches_the_usual_spellings(name: str, text: str) -> None:
    assert auth_opt_outs(Path(name), text)
    assert not auth_opt_outs(Path(name), text.replace("disabled", "token").replace("Disabled", "token"))


def test_no_file_in_the_repository_turns_token_auth_off() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    here = Path(__file__).resolve()
    checked = 0
    for name in listed.stdout.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file() or path.resolve() == here:
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        checked += 1
        assert not auth_opt_outs(path, data.decode("utf-8", "replace")), f"{name} turns Ray token auth off"
    assert checked > 10


# --- runtime envs and the cluster launcher -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["runtime_env.yaml", "runtime_env.bare.yaml"])
def test_runtime_env_is_valid_and_uploads_no_bulk(name: str) -> None:
    from ray.runtime_env import RuntimeEnv

    env = docs(INFRA / name)[0]
    RuntimeEnv(**env)  # Ray's own validation
    assert {".venv/", ".git/", "demo_out/"} <= set(env["excludes"])
    assert env["env_vars"]["HF_HOME"]


def test_bare_runtime_env_pip_list_matches_pyproject() -> None:
    block = re.search(r"^dependencies = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S).group(1)
    deps = re.findall(r'^\s*"([^"]+)"', block, re.M)
    packages = docs(INFRA / "runtime_env.bare.yaml")[0]["pip"]["packages"]
    assert sorted(packages) == sorted(d for d in deps if not d.startswith("ray["))


def test_aws_cluster_config_passes_ray_validation() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = docs(INFRA / "aws/cluster.yaml")[0]
    validate_config(prepare_config(copy.deepcopy(config)))
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"] == {"CPU": 0} and "InstanceMarketOptions" not in head["node_config"]
    assert any("--num-cpus=0" in c for c in config["head_start_ray_commands"])
    assert types["cpu-decode"]["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert "InstanceMarketOptions" not in types["gpu-score"]["node_config"], "default GPU capacity is on-demand"
    assert types["gpu-score-spot"]["max_workers"] == 0
    assert config["docker"]["image"].endswith(f"-ray{RAY}")
