"""Deployment checks: the Dockerfile, k8s/ and the container helpers, without a cluster,
a container engine or a server (the image itself is tested by scripts/image_test.sh).

- linters: yamllint, hadolint, kubernetes-validate --strict (bundled schemas) and checkov
  (--skip-download); every finding is fixed or waived in config/lint/ with its reason;
- what the linters miss: selectors match the pod labels, the HPA targets the Deployment,
  Service and NetworkPolicy ports exist on the container, probes run a script the image
  has, every path TorchServe writes is a volume under readOnlyRootFilesystem, the ConfigMap
  copies equal config/, the production profile keeps token auth on and the model API off;
- the container helpers against stand-ins: k8s/container/healthcheck.py against a fake
  management API (keys, expiry, renewal), start_torchserve.py with a fake `java`.

The linters are taken from the directory of the running Python (make lint-deps installs
requirements-lint.txt there) or from .venv-lint/bin.
"""
from __future__ import annotations

import ast
import copy
import http.server
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
BASE = K8S / "base"
DEV = K8S / "overlays" / "dev"
KSERVE = K8S / "kserve"
CONTAINER = K8S / "container"
DOCKERFILE = ROOT / "Dockerfile"
LINT = ROOT / "config" / "lint"
PRODUCTION = ROOT / "config" / "config.properties"
HEALTHCHECK = CONTAINER / "healthcheck.py"
START = CONTAINER / "start_torchserve.py"
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")  # oldest cluster we support, newest schema bundled
CACHE = "pd-segmenter-cache"  # the dev overlay's Redis: Deployment, Service, NetworkPolicy, ConfigMap


# --- helpers ------------------------------------------------------------------------------

def tool(name: str) -> str:
    for folder in (Path(sys.executable).parent, ROOT / ".venv-lint" / "bin"):
        if (folder / name).is_file():
            return str(folder / name)
    pytest.fail(f"{name} is not installed: `make lint-deps` installs requirements-lint.txt")


def run_tool(*command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def load_properties(path: Path) -> dict[str, str]:
    props = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


# Dockerfile -------------------------------------------------------------------------------

def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def image_env() -> dict[str, str]:
    env = {}
    for keyword, arguments in final_stage():
        if keyword == "ENV":
            for item in shlex.split(arguments):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def image_setting(keyword: str) -> str:
    values = [arguments for kw, arguments in final_stage() if kw == keyword]
    assert values, f"the final stage has no {keyword}"
    return values[-1]


def image_copies() -> dict[str, str]:
    """Image path -> repository path of the final stage's COPY lines from the build context."""
    copies = {}
    for keyword, arguments in final_stage():
        if keyword == "COPY" and not arguments.startswith("--from"):
            *sources, destination = shlex.split(arguments)
            for source in sources:
                target = destination + Path(source).name if destination.endswith("/") else destination
                copies[target] = source
    return copies


def dockerignore_excludes(path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent wins."""
    def regex(pattern: str) -> re.Pattern:
        out = ""
        for token in re.split(r"(\*\*/?|\*|\?)", pattern.strip("/")):
            out += {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
        return re.compile(out + "$")

    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if any(regex(line.lstrip("!")).match(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


# kustomize --------------------------------------------------------------------------------

def yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def json_pointer_apply(document: dict, operations: list[dict]) -> None:
    for operation in operations:
        *parents, last = [part.replace("~1", "/").replace("~0", "~")
                          for part in operation["path"].lstrip("/").split("/")]
        node = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key = int(last) if isinstance(node, list) and last != "-" else last
        if operation["op"] in ("replace", "add"):
            if isinstance(node, list) and operation["op"] == "add":
                node.insert(len(node) if key == "-" else key, copy.deepcopy(operation["value"]))
            else:
                node[key] = copy.deepcopy(operation["value"])
        elif operation["op"] == "remove":
            del node[key]
        else:
            raise NotImplementedError(f"JSON patch op {operation['op']}")


def render(folder: Path) -> list[dict]:
    """The subset of kustomize this repository uses: resources (files and folders),
    configMapGenerator (files), images (newName/newTag) and JSON6902 patches with a target.
    ConfigMap names keep no content hash (kubectl adds one and rewrites references)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unsupported = set(spec) - {"apiVersion", "kind", "resources", "configMapGenerator", "images", "patches"}
    assert not unsupported, f"render() does not implement {unsupported}: extend it or keep kustomization simple"
    resources: list[dict] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        resources += render(path) if path.is_dir() else yaml_documents(path)
    for generator in spec.get("configMapGenerator", []):
        metadata = {"name": generator["name"]}
        if "namespace" in generator:
            metadata["namespace"] = generator["namespace"]
        resources.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
                          "data": {Path(f).name: (folder / f).read_text() for f in generator["files"]}})
    for image in spec.get("images", []):
        for resource in resources:
            for container in pod_spec(resource).get("containers", []) if pod_spec(resource) else []:
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    for patch in spec.get("patches", []):
        operations = yaml.safe_load((folder / patch["path"]).read_text())
        assert isinstance(operations, list), "render() applies JSON6902 patches only"
        targets = [r for r in resources if r["kind"] == patch["target"]["kind"]
                   and r["metadata"]["name"] == patch["target"]["name"]]
        assert len(targets) == 1, f"patch {patch['path']} matches {len(targets)} resources"
        json_pointer_apply(targets[0], operations)
    return resources


def pod_spec(resource: dict) -> dict | None:
    if resource.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return resource["spec"]["template"]["spec"]
    return None


def one(resources: list[dict], kind: str) -> dict:
    """The service's own resource of ``kind`` (the dev overlay's Redis has its own beside it)."""
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] != CACHE]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def torchserve_container(resources: list[dict]) -> dict:
    [container] = [c for c in pod_spec(one(resources, "Deployment"))["containers"] if c["name"] == "torchserve"]
    return container


RENDERED = {"base": BASE, "dev": DEV}


@pytest.fixture(scope="module", params=sorted(RENDERED))
def rendered(request) -> list[dict]:
    return render(RENDERED[request.param])


@pytest.fixture(scope="module")
def rendered_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("rendered")
    files = {}
    for name, source in RENDERED.items():
        files[name] = folder / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump_all(render(source), sort_keys=False))
    return files


# --- linters ------------------------------------------------------------------------------

def test_yamllint():
    targets = [str(p.relative_to(ROOT)) for p in sorted(K8S.rglob("*.yaml"))]
    lint_configs = [str(p.relative_to(ROOT)) for p in sorted(LINT.glob("*.yaml"))]
    result = run_tool(tool("yamllint"), "--strict", "-f", "parsable", "-c", str(LINT / "yamllint.yaml"),
                      *targets, "config/metrics.yaml", "config/model-config.yaml", *lint_configs)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint():
    result = run_tool(tool("hadolint"), "--no-color", "--config", str(LINT / "hadolint.yaml"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def kubernetes_manifests() -> list[Path]:
    spec = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [BASE / entry for entry in spec["resources"]]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_strict(version, rendered_files):
    files = [str(p) for p in kubernetes_manifests()] + [str(p) for p in rendered_files.values()]
    result = run_tool(tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, *files)
    assert result.returncode == 0 and "ERROR" not in result.stdout, result.stdout + result.stderr


def checkov_failures(*arguments: str) -> set[tuple[str, str]]:
    result = run_tool(tool("checkov"), "--skip-download", "--quiet", "--compact", "-o", "json", *arguments)
    assert result.returncode in (0, 1), result.stdout[-2000:] + result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failures = set()
    for report in reports:
        for check in report.get("results", {}).get("failed_checks", []):
            failures.add((check["check_id"], check["file_path"]))
    return failures


def test_checkov_findings_are_all_waived(rendered_files):
    waivers = yaml.safe_load((LINT / "checkov-waivers.yaml").read_text())["waivers"]
    for waiver in waivers:
        assert len(str(waiver.get("reason", "")).split()) >= 8, f"{waiver['id']} needs a reason"
    waived = {waiver["id"] for waiver in waivers}
    failures = checkov_failures("--framework", "kubernetes", "-d", "k8s")
    files = [argument for path in [DOCKERFILE, *rendered_files.values()] for argument in ("-f", str(path))]
    failures |= checkov_failures("--framework", "kubernetes", "dockerfile", *files)
    unwaived = sorted(f for f in failures if f[0] not in waived)
    assert not unwaived, f"fix these or waive them in config/lint/checkov-waivers.yaml: {unwaived}"
    stale = waived - {check_id for check_id, _ in failures}
    assert not stale, f"waivers that match no finding any more (remove them): {stale}"


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed")
@pytest.mark.parametrize("name", sorted(RENDERED))
def test_render_matches_kubectl_kustomize(name):
    """Our small renderer (used by every check below) agrees with the real kustomize."""
    result = run_tool("kubectl", "kustomize", str(RENDERED[name]))
    assert result.returncode == 0, result.stderr
    real = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    hashed = {doc["metadata"]["name"] for doc in real if doc["kind"] == "ConfigMap"}
    text = result.stdout
    for full in hashed:
        text = text.replace(full, full.rsplit("-", 1)[0])
    key = lambda doc: (doc["kind"], doc["metadata"]["name"])  # noqa: E731
    assert sorted((d for d in yaml.safe_load_all(text) if d), key=key) == sorted(render(RENDERED[name]), key=key)


# --- what the linters miss ----------------------------------------------------------------

def test_selectors_match_the_pod_labels(rendered):
    deployment = one(rendered, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    assert selects(deployment["spec"]["selector"]["matchLabels"])
    assert selects(one(rendered, "Service")["spec"]["selector"])
    assert selects(one(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"])
    assert selects(one(rendered, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"])
    for constraint in pod_spec(deployment).get("topologySpreadConstraints", []):
        assert selects(constraint["labelSelector"]["matchLabels"])


def test_everything_lives_in_one_namespace(rendered):
    [namespace] = [r["metadata"]["name"] for r in rendered if r["kind"] == "Namespace"]
    for resource in rendered:
        if resource["kind"] != "Namespace":
            assert resource["metadata"].get("namespace") == namespace, resource["kind"]
    labels = one(rendered, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_hpa_targets_the_deployment(rendered):
    deployment, hpa = one(rendered, "Deployment"), one(rendered, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == \
        (deployment["apiVersion"], "Deployment", deployment["metadata"]["name"])
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # CPU utilization is relative to the request: without one the HPA cannot act.
    assert torchserve_container(rendered)["resources"]["requests"]["cpu"]


def test_ports_agree_with_the_production_profile(rendered):
    container = torchserve_container(rendered)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    props = load_properties(BASE / "config.properties")
    assert ports == {name: port_of(props[f"{name}_address"]) for name in ("inference", "management", "metrics")}
    exposed = {int(port) for port in image_setting("EXPOSE").split()}
    assert exposed == set(ports.values())
    for port in one(rendered, "Service")["spec"]["ports"]:
        assert port["targetPort"] in ports or port["targetPort"] in ports.values(), port
        assert port["port"] == ports[port["name"]]
    for rule in one(rendered, "NetworkPolicy")["spec"]["ingress"]:
        for port in rule["ports"]:
            assert port["port"] in ports or port["port"] in ports.values(), port
    annotations = one(rendered, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]


def test_network_policy_scopes():
    policy = yaml.safe_load((BASE / "networkpolicy.yaml").read_text())["spec"]
    by_port = {rule["ports"][0]["port"]: rule.get("from") for rule in policy["ingress"]}
    assert by_port["inference"] is None  # open to clients
    assert by_port["management"] == [{"podSelector": {}}]  # this namespace only
    [source] = by_port["metrics"]
    assert set(source) == {"namespaceSelector"}  # the monitoring namespace only
    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["egress"] == []


def test_probes_run_the_health_script_the_image_has(rendered):
    container = torchserve_container(rendered)
    copies = image_copies()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        script = next(part for part in command if part.endswith(".py"))
        assert copies.get(script) == str(HEALTHCHECK.relative_to(ROOT)), f"{probe}: {script} is not in the image"
        assert command[0] == "python" and set(command[1:]) - {script} <= {"-I", "-S", "--live"}
        assert container[probe]["timeoutSeconds"] >= 2
    assert "--live" in container["livenessProbe"]["exec"]["command"]
    assert "--live" not in container["readinessProbe"]["exec"]["command"]
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # model load + worker start
    healthcheck = image_setting("HEALTHCHECK")
    assert "/opt/pd-serving/healthcheck.py" in healthcheck and "--live" not in healthcheck


def test_the_image_starts_torchserve_under_tini(rendered):
    container = torchserve_container(rendered)
    assert "command" not in container and "args" not in container  # keep the image's tini + CMD
    assert json.loads(image_setting("ENTRYPOINT")) == ["tini", "--"]
    command = json.loads(image_setting("CMD"))
    assert image_copies()[command[1]] == str(START.relative_to(ROOT))
    assert {"--foreground", "--ncs"} <= set(command)
    options = dict(zip(command[2::2], command[3::2]))
    config_dir = str(Path(options["--ts-config"]).parent)
    assert options["--ts-config"] in image_copies() and options["--log-config"] in image_copies()
    assert options["--model-store"] == load_properties(PRODUCTION)["model_store"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[config_dir]["readOnly"] is True
    volumes = {v["name"]: v for v in pod_spec(one(rendered, "Deployment"))["volumes"]}
    configmap = volumes[mounts[config_dir]["name"]]["configMap"]["name"]
    data = next(r for r in rendered if r["kind"] == "ConfigMap" and r["metadata"]["name"] == configmap)["data"]
    assert Path(options["--ts-config"]).name in data
    assert Path(load_properties(PRODUCTION)["metrics_config"]).name in data
    assert Path(load_properties(PRODUCTION)["metrics_config"]).parent == Path(config_dir)


def test_every_path_torchserve_writes_is_a_volume(rendered):
    deployment = one(rendered, "Deployment")
    container = torchserve_container(rendered)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = image_env()
    written = {
        "/tmp",  # java.io.tmpdir: worker sockets, the unpacked .mar; Python's tempfile
        image_setting("WORKDIR"),  # TorchServe's working directory: key_file.json
        str(Path(env["TS_KEY_FILE"]).parent),
        env["LOG_LOCATION"],
        env["METRICS_LOCATION"],
        env["MPLCONFIGDIR"],
    }
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    writable = {m["mountPath"] for m in container["volumeMounts"]
                if not m.get("readOnly") and "emptyDir" in volumes[m["name"]]}
    for path in written:
        assert any(path == mount or path.startswith(mount + "/") for mount in writable), \
            f"{path} is written by TorchServe but not on a writable volume"
    assert env["TS_KEY_FILE"] == f"{image_setting('WORKDIR')}/key_file.json"
    assert "TEMP" not in env and "TMPDIR" not in env  # the JVM and Python keep /tmp
    for volume in volumes.values():
        if "emptyDir" in volume:
            assert volume["emptyDir"].get("sizeLimit"), f"{volume['name']}: emptyDir without sizeLimit"


def test_token_keys_come_from_the_secret_through_the_plugin(rendered):
    """The Deployment mounts the keys Secret read-only where TS_TOKEN_KEYS_DIR points, the
    production profile loads plugins from where the image puts the plugin jar."""
    container = torchserve_container(rendered)
    keys_dir = {e["name"]: e.get("value") for e in container.get("env", [])}["TS_TOKEN_KEYS_DIR"]
    volumes = {v["name"]: v for v in pod_spec(one(rendered, "Deployment"))["volumes"]}
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == keys_dir]
    assert mount["readOnly"] is True
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "pd-segmenter-token-keys" and not secret.get("optional")
    assert secret["defaultMode"] & 0o007 == 0, "keys readable by others"
    plugins = load_properties(PRODUCTION)["plugins_path"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"COPY --from=jre {plugins}/ {plugins}/" in dockerfile
    assert f"{plugins}/pd-token-keys.jar" in dockerfile
    assert "TS_TOKEN_KEYS_DIR" not in image_env(), "the image must not pin a keys folder"


def test_restricted_security_context(rendered):
    deployment = one(rendered, "Deployment")
    pod = pod_spec(deployment)
    container = torchserve_container(rendered)
    assert pod["automountServiceAccountToken"] is False
    account = one(rendered, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"] and "add" not in context["capabilities"]
    assert context["runAsNonRoot"] is True and context.get("privileged") is False
    # the manifest's uid is the image's user (the CKV_K8S_40 waiver relies on this)
    assert image_setting("USER") == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    assert context["runAsUser"] == pod["securityContext"]["runAsUser"] == 1000
    assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
    assert not any("hostPath" in volume for volume in pod["volumes"])
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert re.fullmatch(r"[\w.-]+:\d+\.\d+\.\d+", container["image"]), "image needs a version tag"


def test_graceful_termination(rendered):
    pod = pod_spec(one(rendered, "Deployment"))
    pre_stop = torchserve_container(rendered)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # preStop sleep + TorchServe's shutdown (~3 s measured) must fit in the grace period
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 20


def test_configmap_copies_equal_config():
    for name in ("config.properties", "metrics.yaml"):
        assert (BASE / name).read_text() == (ROOT / "config" / name).read_text(), \
            f"k8s/base/{name} differs from config/{name}: copy it again"


def test_production_profile_is_locked_down():
    props = load_properties(PRODUCTION)
    assert props.get("disable_token_authorization", "false").lower() != "true"
    assert props.get("enable_model_api", "false").lower() == "false"
    assert props.get("enable_envvars_config", "false").lower() == "false"  # no TS_* overrides
    assert props["load_models"] == "pd_segmenter=pd_segmenter.mar"
    assert props["metrics_mode"] == "prometheus"
    assert props["allowed_urls"].startswith(f"file://{props['model_store']}/")
    for name in ("inference", "management", "metrics"):
        assert props[f"{name}_address"].startswith("http://0.0.0.0:")


def test_dev_overlay():
    resources = render(DEV)
    assert one(resources, "Deployment")["spec"]["replicas"] == 1
    assert one(resources, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 1
    base, dev = torchserve_container(render(BASE))["resources"], torchserve_container(resources)["resources"]
    assert dev["requests"]["cpu"] != base["requests"]["cpu"]


def test_dev_overlay_cache_redis():
    """The dev overlay's Redis for the shared result cache (docs/cache.md): a pinned image
    under the restricted profile, reachable by the service's pods only, at the address they
    are given; the base has no Redis and no address (each worker caches on its own)."""
    resources = render(DEV)

    def named(kind: str) -> dict:
        [found] = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == CACHE]
        return found

    pod = pod_spec(named("Deployment"))
    [container] = pod["containers"]
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+(-alpine)?", container["image"]), "Redis needs a version tag"
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 10000  # no CKV_K8S_40 waiver needed
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"] and context["runAsUser"] == pod["securityContext"]["runAsUser"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    [data] = [m for m in container["volumeMounts"] if m["mountPath"] == "/data"]  # Redis's working directory
    assert volumes[data["name"]]["emptyDir"]["sizeLimit"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    arguments = container["args"]
    assert arguments[arguments.index("--save") + 1] == "" and arguments[arguments.index("--appendonly") + 1] == "no"
    assert mebibytes(container["resources"]["limits"]["memory"]) > int(arguments[arguments.index("--maxmemory") + 1][:-2])
    url = urllib.parse.urlsplit(named("ConfigMap")["data"]["PD_CACHE_URL"].strip())
    [port] = named("Service")["spec"]["ports"]
    assert (url.scheme, url.hostname, url.port) == ("redis", f"{CACHE}.pd-detection.svc", port["port"])
    env = {e["name"]: e for e in torchserve_container(resources)["env"]}
    assert env["PD_CACHE_URL"]["valueFrom"]["configMapKeyRef"] == {"name": CACHE, "key": "PD_CACHE_URL"}
    assert "PD_CACHE_URL" not in {e["name"] for e in torchserve_container(render(BASE))["env"]}
    assert not [r for r in render(BASE) if r["metadata"]["name"] == CACHE]
    policy = named("NetworkPolicy")["spec"]
    labels = one(resources, "Deployment")["spec"]["template"]["metadata"]["labels"]
    [rule] = policy["ingress"]
    [source] = rule["from"]
    assert all(labels.get(k) == v for k, v in source["podSelector"]["matchLabels"].items())
    assert policy["egress"] == [] and policy["policyTypes"] == ["Ingress", "Egress"]
    egress = one(resources, "NetworkPolicy")["spec"]["egress"]  # the service's pods: Redis and DNS only
    assert {(p["port"], p["protocol"]) for r in egress for p in r["ports"]} == {(6379, "TCP"), (53, "UDP"), (53, "TCP")}


def test_kserve_manifest_and_profile():
    [service] = yaml_documents(KSERVE / "inferenceservice.yaml")
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    model = service["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "pytorch" and model["storageUri"]
    # the runtime's image is not ours: what our image's environment holds for the workers
    assert {item["name"]: item["value"] for item in model["env"]}["OMP_WAIT_POLICY"] == "PASSIVE"
    props = load_properties(KSERVE / "config.properties")
    # token auth is off there only because TorchServe is reachable from inside the pod only
    assert props["disable_token_authorization"] == "true"
    assert props["inference_address"].startswith("http://127.0.0.1:")
    assert props["management_address"].startswith("http://127.0.0.1:")
    assert props["enable_model_api"] == "false"
    assert props["model_store"] == "/mnt/models/model-store"
    snapshot = json.loads(props["model_snapshot"])
    [[version, settings]] = snapshot["models"]["pd_segmenter"].items()
    mar_config = yaml.safe_load((ROOT / "config" / "model-config.yaml").read_text())
    for key in ("minWorkers", "maxWorkers", "batchSize", "maxBatchDelay", "responseTimeout"):
        assert settings[key] == mar_config[key], key
    assert settings["marName"] == "pd_segmenter.mar" and version == "1.0"


# Dockerfile and build context -------------------------------------------------------------

def test_dockerfile_basics():
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    args = [arguments for keyword, arguments in instructions if keyword == "ARG"]
    base = next(a for a in args if a.startswith("BASE_IMAGE="))
    image, _, tag = base.split("=", 1)[1].partition(":")
    assert image == "python" and tag.startswith("3.11") and tag != "latest"  # CKV_DOCKER_7 waiver
    froms = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert len(froms) >= 2 and froms[-1] == "${BASE_IMAGE}"
    assert any("TORCH_INDEX_URL" in a for a in args) and any(a.startswith("PIP_FIND_LINKS") for a in args)
    user = image_setting("USER")
    assert re.fullmatch(r"\d+:\d+", user) and not user.startswith("0:")  # numeric: runAsNonRoot can verify
    copies = [arguments for keyword, arguments in final_stage() if keyword == "COPY"]
    from_stages = {a.split()[0] for a in copies if a.startswith("--from")}
    assert from_stages == {"--from=jre", "--from=runtime-venv", "--from=archive"}
    text = DOCKERFILE.read_text()
    assert "python scripts/export.py" in text  # the .mar is built in the image build


def test_the_image_and_the_local_server_give_the_workers_passive_openmp_waits():
    """OMP_WAIT_POLICY=PASSIVE in the final stage's environment and in scripts/serve.py's: two
    workers on two network threads each spun against each other at OpenMP barriers (a batch
    of the largest requests 22-47 s instead of about 3 s; scripts/reliability.py's batch check
    holds the time)."""
    from serve import WORKER_ENVIRONMENT

    assert image_env()["OMP_WAIT_POLICY"] == "PASSIVE"
    assert WORKER_ENVIRONMENT["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_local_server_starts_with_passive_waits_unless_the_caller_sets_them(monkeypatch, tmp_path):
    from serve import LocalServer

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    server = LocalServer(runtime_dir=tmp_path, environment={"PD_CACHE_URL": ""})
    assert server.process_environment()["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the caller's own choice wins
    assert server.process_environment()["OMP_WAIT_POLICY"] == "ACTIVE"


def test_build_context_has_what_the_dockerfile_copies():
    for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword != "COPY" or arguments.startswith("--from"):
            continue
        for source in shlex.split(arguments)[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: missing"
            assert not dockerignore_excludes(source.rstrip("/")), f"COPY {source}: excluded by .dockerignore"
    for path in (".venv/bin/python", ".git/HEAD", "build/x", "logs/x.log", ".run/serve/x", "tests/test_x.py",
                 "docs/operations.md", "model_store/pd_segmenter.mar", "data/sample_captures.npy",
                 "k8s/base/deployment.yaml", "handler/pdseg/__pycache__/x.pyc"):
        assert dockerignore_excludes(path), f"{path} should not be in the build context"


def runtime_requirements() -> dict[str, str]:
    text = DOCKERFILE.read_text()
    [pattern] = re.findall(r"grep -v -E '([^']+)' requirements.txt", text)
    kept = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#") and not re.search(pattern, line):
            name, _, version = line.partition("==")
            kept[name.lower()] = version
    return kept


def test_runtime_requirements_cover_the_handler_imports():
    kept = runtime_requirements()
    assert {"torch", "torchserve", "numpy", "scipy", "matplotlib", "pillow", "pyyaml", "psutil"} <= set(kept)
    assert not {"pytest", "tqdm", "torch-model-archiver", "hypothesis", "locust"} & set(kept)
    files = [ROOT / "handler" / "pd_handler.py"] + sorted((ROOT / "handler" / "pdseg").glob("*.py"))
    distributions = importlib.metadata.packages_distributions()
    prune = re.search(r'ARG PRUNE_PACKAGES="([^"]*)"', DOCKERFILE.read_text()).group(1).split()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "pdseg" or top == "__future__":
                    continue
                owners = {d.lower() for d in distributions.get(top, [top])}
                assert owners & set(kept), f"{path.name} imports {top}, which the image does not install"
                assert not owners & set(prune), f"{path.name} imports {top}, which the image prunes"


# --- container helpers --------------------------------------------------------------------

def test_log_config_writes_to_stdout_only():
    root = ElementTree.parse(CONTAINER / "log4j2.xml").getroot()
    appenders = list(root.find("Appenders"))
    assert [a.tag for a in appenders] == ["Console"] and appenders[0].get("target") == "SYSTEM_OUT"
    loggers = {logger.get("name") for logger in root.find("Loggers")}
    assert {"ACCESS_LOG", "MODEL_LOG", "org.pytorch.serve"} <= loggers


def java_instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nanoseconds, as Java writes them


class FakeManagementAPI:
    """What the probe needs of TorchServe 0.12: GET /models/<name> and POST /token, with the
    keys in key_file.json (a rejected key answers 400 InvalidKeyException, as 0.12 does)."""

    def __init__(self, folder: Path, statuses=("READY",), management_expires_in=3600.0, reject_file_key=False):
        self.key_file = folder / "key_file.json"
        self.statuses = list(statuses)
        self.renewals = 0
        now = datetime.now(timezone.utc)
        self.keys = {"management": ["mgmt-1", now + timedelta(seconds=management_expires_in)],
                     "inference": ["infer-1", now + timedelta(hours=1)], "API": ["api-1", None]}
        self.write()
        if reject_file_key:  # the server has moved on: the key in the file is not the server's
            self.keys["management"][0] = "mgmt-elsewhere"
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def key_ok(self, kind: str) -> bool:
                key, expiry = fake.keys[kind]
                sent = self.headers.get("Authorization", "")
                return sent == f"Bearer {key}" and (expiry is None or expiry > datetime.now(timezone.utc))

            def reject(self) -> None:
                self.answer(400, {"code": 400, "type": "InvalidKeyException", "message": "Token Authorization failed."})

            def do_GET(self):
                if not self.key_ok("management"):
                    return self.reject()
                if self.path != "/models/pd_segmenter":
                    return self.answer(404, {"code": 404, "type": "ModelNotFoundException"})
                workers = [{"id": str(9000 + i), "status": s} for i, s in enumerate(fake.statuses)]
                self.answer(200, [{"modelName": "pd_segmenter", "modelVersion": "1.0", "workers": workers}])

            def do_POST(self):
                if self.path != "/token?type=management" or not self.key_ok("API"):
                    return self.reject()
                fake.renewals += 1
                fake.keys["management"] = [f"mgmt-{fake.renewals + 1}", datetime.now(timezone.utc) + timedelta(hours=1)]
                fake.write()
                self.answer(200, {})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def write(self) -> None:
        document = {kind: {"key": key} | ({"expiration time": java_instant(expiry)} if expiry else {})
                    for kind, (key, expiry) in self.keys.items()}
        self.key_file.write_text(json.dumps(document, indent=2))

    def probe(self, *arguments: str, url: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ.get("PATH", ""), "TS_KEY_FILE": str(self.key_file),
               "TS_MANAGEMENT_URL": url or self.url, "TS_PROBE_TIMEOUT": "3"}
        return subprocess.run([sys.executable, "-I", "-S", str(HEALTHCHECK), *arguments], env=env,
                              capture_output=True, text=True, timeout=30)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api(tmp_path):
    servers = []

    def start(**kwargs) -> FakeManagementAPI:
        servers.append(FakeManagementAPI(tmp_path, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_probe_ready_when_a_worker_is_ready(fake_api):
    api = fake_api(statuses=("READY", "LOADING"))
    result = api.probe()
    assert result.returncode == 0 and result.stdout.startswith("ready: 1 worker"), result.stdout
    assert api.renewals == 0


def test_probe_not_ready_while_loading_but_alive(fake_api):
    api = fake_api(statuses=("LOADING",))
    result = api.probe()
    assert result.returncode == 1 and "not ready" in result.stdout and "LOADING" in result.stdout
    assert api.probe("--live").returncode == 0


def test_probe_renews_an_expired_management_key_only(fake_api):
    api = fake_api(management_expires_in=-5)
    before = json.loads(api.key_file.read_text())
    result = api.probe()
    assert result.returncode == 0, result.stdout
    after = json.loads(api.key_file.read_text())
    assert api.renewals == 1 and after["management"]["key"] != before["management"]["key"]
    assert after["inference"] == before["inference"]  # clients' key untouched
    assert api.probe().returncode == 0 and api.renewals == 1  # the new key is used from now on


def test_probe_renews_a_rejected_key(fake_api):
    api = fake_api(reject_file_key=True)
    assert api.probe("--live").returncode == 0 and api.renewals == 1


def test_probe_fails_cleanly(fake_api, tmp_path):
    api = fake_api()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    result = api.probe(url=dead)
    assert result.returncode == 1 and "does not answer" in result.stdout
    api.keys["API"][0] = "api-other"  # renewal impossible: a wrong API key in the file
    api.keys["management"][0] = "mgmt-other"
    result = api.probe()
    assert result.returncode == 1 and "renewing the management key failed" in result.stdout
    api.key_file.unlink()
    result = api.probe()
    assert result.returncode == 1 and "no " in result.stdout and result.stderr == ""


def test_start_script_execs_the_jvm(tmp_path):
    """start_torchserve.py runs TorchServe's launcher, which must *become* the JVM (same pid)
    with the config's vmargs and our log config; a stale key file must be gone first."""
    pytest.importorskip("ts.model_server")
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    fake_java = java_home / "bin" / "java"
    fake_java.write_text('#!/bin/sh\necho "pid $$"\nfor a in "$@"; do echo "arg $a"; done\n')
    fake_java.chmod(0o755)
    work, store, temp = tmp_path / "run", tmp_path / "store", tmp_path / "tmp"
    for folder in (work, store, temp):
        folder.mkdir()
    (work / "key_file.json").write_text("{}")
    env = {k: v for k, v in os.environ.items() if k not in ("TS_CONFIG_FILE", "TEMP")}
    env |= {"JAVA_HOME": str(java_home), "TMPDIR": str(temp)}
    process = subprocess.Popen(
        [sys.executable, str(START), "--ts-config", str(PRODUCTION), "--model-store", str(store),
         "--log-config", str(CONTAINER / "log4j2.xml"), "--foreground", "--ncs"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert f"pid {process.pid}" in output, output  # exec'd: the JVM has the launcher's pid
    arguments = [line[4:] for line in output.splitlines() if line.startswith("arg ")]
    vmargs = load_properties(PRODUCTION)["vmargs"].split()
    assert arguments[arguments.index("-cp") - len(vmargs):arguments.index("-cp")] == vmargs
    assert f"-Dlog4j.configurationFile=file://{CONTAINER / 'log4j2.xml'}" in arguments
    assert "org.pytorch.serve.ModelServer" in arguments and "-ncs" in arguments
    assert "--disable-token-auth" not in arguments
    assert not (work / "key_file.json").exists()
    assert not (temp / ".model_server.pid").exists()


def test_start_script_reports_a_bad_option(tmp_path):
    pytest.importorskip("ts.model_server")
    result = subprocess.run([sys.executable, str(START), "--ts-config", str(tmp_path / "missing.properties")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if k != "TS_CONFIG_FILE"} | {"TMPDIR": str(tmp_path)})
    assert result.returncode == 1 and "not found" in result.stdout


def mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]] if quantity[-2:] in units else float(quantity) / 2**20


def test_memory_resources_cover_the_measured_budgets():
    """Pod memory follows from the budgets scripts/reliability.py holds the service to
    (docs/reliability.md): the request holds the frontend and the minWorkers workers the
    archive starts, the base limit the frontend and maxWorkers workers, the dev and KServe
    limits the frontend and minWorkers workers; the frontend's budget covers what its vmargs
    allow the JVM."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from reliability import FRONTEND_BUDGET_MIB, MEMORY_BUDGET_MIB

    workers = yaml.safe_load((ROOT / "config" / "model-config.yaml").read_text())
    base = torchserve_container(render(BASE))["resources"]
    dev = torchserve_container(render(DEV))["resources"]
    started = FRONTEND_BUDGET_MIB + workers["minWorkers"] * MEMORY_BUDGET_MIB
    assert mebibytes(base["requests"]["memory"]) >= started
    assert mebibytes(base["limits"]["memory"]) >= FRONTEND_BUDGET_MIB + workers["maxWorkers"] * MEMORY_BUDGET_MIB
    assert mebibytes(dev["limits"]["memory"]) >= started
    kserve = yaml.safe_load((ROOT / "k8s" / "kserve" / "inferenceservice.yaml").read_text())
    assert mebibytes(kserve["spec"]["predictor"]["model"]["resources"]["limits"]["memory"]) >= started
    for profile in (PRODUCTION, ROOT / "config" / "local.properties"):
        vmargs = load_properties(profile)["vmargs"]
        sizes = {flag: int(value) for flag, value in
                 re.findall(r"-XX:(MaxDirectMemorySize|MaxMetaspaceSize|ReservedCodeCacheSize)=(\d+)m", vmargs)}
        heap = int(re.search(r"-Xmx(\d+)m", vmargs).group(1))
        assert heap + sum(sizes.values()) + 96 <= FRONTEND_BUDGET_MIB, profile.name
        assert len(sizes) == 3, f"{profile.name}: direct memory, metaspace and code cache need explicit caps"
