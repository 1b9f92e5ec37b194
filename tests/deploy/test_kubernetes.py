"""deploy/k8s: every overlay renders with `kubectl kustomize` (kustomize built into kubectl),
every rendered object validates against the Kubernetes schema (kubernetes-validate, strict),
and the objects do what docs/operations.md says."""

import subprocess

import kubernetes_validate
import pytest
import yaml

from .conftest import DEPLOY

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.33.0"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
WORKER_COMMAND_PREFIX = ["celery", "--workdir", "platform", "-A", "config", "worker"]


def render(tool, folder) -> list[dict]:
    out = subprocess.run([tool("kubectl"), "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module", params=[K8S / "base", *OVERLAYS], ids=lambda p: p.relative_to(K8S).as_posix())
def rendered(request, tool) -> list[dict]:
    return render(tool, request.param)


def by_kind(objects, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_overlays_exist():
    assert {p.name for p in OVERLAYS} == {"production", "cpu-only"}


def test_every_rendered_object_is_valid(rendered):
    assert len(rendered) >= 12
    for obj in rendered:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_validation_rejects_a_misspelt_field():
    """strict mode is what catches a typo like `replica:`; make sure it is on."""
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"replica": 1, "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def pod(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def test_web_probes_the_health_endpoints_behind_service_and_ingress(rendered):
    web = by_kind(rendered, "Deployment")["galaxy-web"]
    gunicorn = next(c for c in pod(web)["containers"] if c["name"] == "gunicorn")
    assert gunicorn["command"] == ["gunicorn", "--pythonpath", "platform", "-c", "deploy/gunicorn.conf.py",
                                   "config.wsgi"]
    assert gunicorn["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gunicorn["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = by_kind(rendered, "Service")["galaxy-web"]
    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]
    backend = by_kind(rendered, "Ingress")["galaxy-web"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "galaxy-web"


def test_cpu_worker_scales_with_an_hpa(rendered):
    worker = by_kind(rendered, "Deployment")["galaxy-worker"]
    assert pod(worker)["containers"][0]["command"][:6] == WORKER_COMMAND_PREFIX
    hpa = by_kind(rendered, "HorizontalPodAutoscaler")["galaxy-worker"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "galaxy-worker" and hpa["spec"]["maxReplicas"] > 1


def test_beat_is_a_single_replica_replaced_not_surged(rendered):
    beat = by_kind(rendered, "Deployment")["galaxy-beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    assert "galaxy-beat" not in by_kind(rendered, "HorizontalPodAutoscaler")


def test_migrations_run_as_a_job(rendered):
    job = by_kind(rendered, "Job")["galaxy-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "manage.py", "migrate",
                                                                            "--noinput"]


def test_every_deployment_has_a_disruption_budget_or_is_single(rendered):
    budgets = by_kind(rendered, "PodDisruptionBudget").values()
    for name, deployment in by_kind(rendered, "Deployment").items():
        labels = deployment["spec"]["selector"]["matchLabels"]
        covered = [b for b in budgets if b["spec"]["selector"]["matchLabels"] == labels]
        assert covered or name == "galaxy-beat", name


def test_pods_run_as_non_root_on_read_only_filesystems(rendered):
    templates = [d["spec"]["template"]["spec"] for d in by_kind(rendered, "Deployment").values()]
    templates += [j["spec"]["template"]["spec"] for j in by_kind(rendered, "Job").values()]
    for spec in templates:
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"] + spec.get("initContainers", []):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, container["name"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_referenced_config_and_volumes_exist(rendered):
    config_maps, secrets = by_kind(rendered, "ConfigMap"), by_kind(rendered, "Secret")
    claims = by_kind(rendered, "PersistentVolumeClaim")
    templates = [d["spec"]["template"]["spec"] for d in [*by_kind(rendered, "Deployment").values(),
                                                         *by_kind(rendered, "Job").values()]]
    for spec in templates:
        for container in spec["containers"] + spec.get("initContainers", []):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
                else:
                    assert source["secretRef"]["name"] in secrets
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_production_runs_gpu_workers_on_gpu_nodes(tool):
    objects = render(tool, K8S / "overlays" / "production")
    gpu = by_kind(objects, "Deployment")["galaxy-worker-gpu"]
    spec = pod(gpu)
    container = spec["containers"][0]
    command = container["command"]
    assert command[:6] == WORKER_COMMAND_PREFIX and command[command.index("-Q") + 1] == "gpu"
    assert command[command.index("--concurrency") + 1] == "1"
    assert command[command.index("--prefetch-multiplier") + 1] == "1"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert gpu["spec"]["replicas"] == 2 and "galaxy-worker-gpu" in by_kind(objects, "PodDisruptionBudget")
    assert container["image"].startswith("registry.example.org/galaxy-platform-worker-gpu:")
    assert all(o["metadata"].get("namespace") == "galaxy-platform" for o in objects if o["kind"] != "Namespace")


def test_cpu_only_overlay_has_no_gpu_worker_and_consumes_both_queues(tool):
    objects = render(tool, K8S / "overlays" / "cpu-only")
    deployments = by_kind(objects, "Deployment")
    assert "galaxy-worker-gpu" not in deployments
    command = pod(deployments["galaxy-worker"])["containers"][0]["command"]
    assert command[command.index("-Q") + 1] == "default,gpu"
    settings = next(cm for name, cm in by_kind(objects, "ConfigMap").items() if name.startswith("galaxy-config"))
    assert settings["data"]["RETRAIN_TRAIN_PRESET"] == "fast_cpu"


def test_production_shares_a_bucket_not_a_volume_and_cpu_only_keeps_the_volume(tool):
    production = render(tool, K8S / "overlays" / "production")
    config = next(c for c in by_kind(production, "ConfigMap").values() if "STORAGE_BACKEND" in c.get("data", {}))
    assert config["data"]["STORAGE_BACKEND"] == "s3" and config["data"]["AWS_STORAGE_BUCKET_NAME"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(by_kind(production, "Secret")["galaxy-secrets"]["stringData"])
    assert by_kind(production, "PersistentVolumeClaim") == {}
    for deployment in by_kind(production, "Deployment").values():
        assert not any("persistentVolumeClaim" in v for v in pod(deployment).get("volumes", [])), deployment["metadata"]
    staging = render(tool, K8S / "overlays" / "cpu-only")
    assert by_kind(staging, "PersistentVolumeClaim")["galaxy-media"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert all("STORAGE_BACKEND" not in c.get("data", {}) for c in by_kind(staging, "ConfigMap").values())
