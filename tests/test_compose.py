"""The production stack's files are consistent: docker-compose.yml, .env.example, deploy/, Dockerfile.

Runs without a Docker engine; ``docker compose config`` is run too when a Compose v2 CLI is installed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import SecretStr

from models.settings import SEARCH_ATTRIBUTES, Settings
from workers.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
WORKERS = {"worker-calls": "calls", "worker-speech": "speech"}  # service: the `telephony worker --role` it runs
OUR_SERVICES = {"api", "media", *WORKERS, "voice", "migrate"}
SUBCOMMANDS = {"api", "media", "worker", "voice", "migrate"}
EXPECTED_SERVICES = OUR_SERVICES | {
    "postgresql",
    "temporal",
    "temporal-admin-tools",
    "temporal-ui",
    "redis",
    "livekit",
    "livekit-sip",
    "s3",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}, ${NAME:+x}, $NAME
VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation, enough for this file (no nested defaults)."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["braced"] or match["bare"], match["op"], match["arg"] or ""
        value = env.get(name)
        if op in (":-", "-"):
            return value if value or (op == "-" and value is not None) else arg
        if op in (":+", "+"):
            return arg if value or (op == "+" and value is not None) else ""
        if value is None or (op == ":?" and not value):
            raise KeyError(f"${{{name}}} is not defined")
        return value

    return VARIABLE.sub(substitute, text)


def strings(node: Any) -> Iterator[str]:
    """Every string value of a YAML document (Compose interpolates values, not keys)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict) and isinstance(document.get("services"), dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


def test_services_are_defined(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == EXPECTED_SERVICES
    for name, service in services.items():
        assert "image" in service or "build" in service, name


def test_depends_on_names_defined_services(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        targets = {d: {} for d in depends} if isinstance(depends, list) else depends
        for target, options in targets.items():
            assert target in services, f"{name} depends on undefined service {target}"
            assert target != name
            condition = (options or {}).get("condition", "service_started")
            assert condition in CONDITIONS, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} is a one-shot job"
    for name in ("api", *WORKERS):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["temporal-admin-tools"]["condition"] == "service_completed_successfully"


def test_every_variable_is_defined_or_has_a_default(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    undefined = set()
    for text in strings(compose):
        for match in VARIABLE.finditer(text):
            name = match["braced"] or match["bare"]
            if name is None:
                continue  # $$
            has_default = match["op"] in (":-", "-", ":+", "+")
            if name not in env_example and not has_default:
                undefined.add(name)
            if match["op"] in (":?", "?") or match["op"] is None:
                assert env_example.get(name, "x") != "", f"{name} is required but empty in .env.example"
    assert not undefined, f"used in docker-compose.yml, missing from .env.example: {sorted(undefined)}"
    for text in strings(compose):
        interpolate(text, env_example)  # raises on anything unresolved


def test_telephony_variables_are_settings_fields(
    services: dict[str, dict[str, Any]], env_example: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = Settings.model_fields
    for name, service in services.items():
        for key in environment_of(service):
            if key.startswith("TELEPHONY_"):
                assert key.removeprefix("TELEPHONY_").lower() in fields, f"{name}: {key} is no Settings field"
    for key in re.findall(r"\b(TELEPHONY_\w+)=", DOCKERFILE.read_text()):
        assert key.removeprefix("TELEPHONY_").lower() in fields, f"Dockerfile: {key} is no Settings field"
    # The values parse: the api's environment, interpolated with .env.example, builds valid Settings.
    for key, value in environment_of(services["api"]).items():
        monkeypatch.setenv(key, interpolate(value, env_example))
    settings = Settings(_env_file=None)
    assert settings.storage_backend == "s3" and settings.livekit_configured
    assert settings.temporal_address == "temporal:7233" and settings.api_host == "0.0.0.0"
    assert settings.resolved_database_url.startswith("postgresql+asyncpg://")


def test_secrets_come_from_the_env_file(services: dict[str, dict[str, Any]]) -> None:
    secret_fields = {
        name for name, field in Settings.model_fields.items() if SecretStr in getattr(field.annotation, "__args__", ())
    } | {name for name, field in Settings.model_fields.items() if field.annotation is SecretStr}
    assert {"secret_keys", "livekit_api_secret", "s3_secret_access_key"} <= secret_fields
    for name in OUR_SERVICES:
        env = environment_of(services[name])
        for field in secret_fields:
            key = f"TELEPHONY_{field.upper()}"
            if key in env:
                assert "${" in env[key], f"{name}: {key} must come from the env file"
        assert "${" in env["TELEPHONY_DATABASE_URL"]


def test_our_services_run_telephony_subcommands(services: dict[str, dict[str, Any]]) -> None:
    built = {name for name, service in services.items() if "build" in service}
    assert built == OUR_SERVICES
    parser = build_parser()
    for name in built:
        service = services[name]
        assert "entrypoint" not in service, f"{name} must keep the image's `telephony` entrypoint"
        command = service["command"]
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        assert argv[0] in SUBCOMMANDS, f"{name} runs `telephony {argv[0]}`"
        args = parser.parse_args(argv)
        assert args.func.__name__ == f"cmd_{argv[0]}"
    assert re.search(r'^ENTRYPOINT \["telephony"\]$', DOCKERFILE.read_text(), re.M)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "telephony" in scripts


def test_the_workers_run_the_call_role_and_the_speech_role(services: dict[str, dict[str, Any]]) -> None:
    """Two worker services, one per role: together they poll every task queue, and neither runs ``all``."""
    parser = build_parser()
    roles = {name: parser.parse_args(services[name]["command"]).role for name in WORKERS}
    assert roles == WORKERS
    assert "livekit" in services["worker-calls"]["depends_on"]  # rooms, SIP trunks, egress


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    mounted = []
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                path = (ROOT / source).resolve()
                assert path.exists(), f"{name} mounts missing {source}"
                mounted.append(path)
    assert {p.relative_to(ROOT).as_posix() for p in mounted} >= {
        "deploy/livekit/livekit.yaml",
        "deploy/livekit/sip.yaml",
        "deploy/temporal/dynamicconfig",
        "deploy/temporal/register-search-attributes.sh",
    }


def _published(port: Any, env: dict[str, str]) -> list[tuple[int, str]]:
    if isinstance(port, dict):
        published, protocol = str(port.get("published", "")), port.get("protocol", "tcp")
    else:
        text, _, protocol = interpolate(str(port), env).partition("/")
        parts = text.rsplit(":", 2)
        assert len(parts) >= 2, f"{port}: publish with an explicit host port"
        published = parts[-2]
    published = interpolate(published, env)
    low, _, high = published.partition("-")
    return [(p, protocol or "tcp") for p in range(int(low), int(high or low) + 1)]


def test_published_ports_are_unique(services: dict[str, dict[str, Any]], env_example: dict[str, str]) -> None:
    owners: dict[tuple[int, str], str] = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            for key in _published(port, env_example):
                assert key not in owners, f"host port {key} published by {owners[key]} and {name}"
                owners[key] = name
    assert owners[(8000, "tcp")] == "api" and owners[(8233, "tcp")] == "temporal-ui"
    assert owners[(5060, "udp")] == owners[(5060, "tcp")] == "livekit-sip"


def test_search_attributes_registered_are_the_settings_ones(services: dict[str, dict[str, Any]]) -> None:
    script = (DEPLOY / "temporal" / "register-search-attributes.sh").read_text()
    match = re.search(r'^attributes="([^"]+)"$', script, re.M)
    assert match is not None
    registered = dict(pair.split("=", 1) for pair in match[1].split())
    assert registered == SEARCH_ATTRIBUTES
    assert services["temporal-admin-tools"]["depends_on"]["temporal"]["condition"] == "service_healthy"


def test_deploy_configs(services: dict[str, dict[str, Any]]) -> None:
    livekit = yaml.safe_load((DEPLOY / "livekit" / "livekit.yaml").read_text())
    sip = yaml.safe_load((DEPLOY / "livekit" / "sip.yaml").read_text())
    for config in (livekit, sip):
        assert config["redis"]["address"].split(":")[0] in services
        assert not {"api_key", "api_secret", "keys"} & set(config), "secrets come from the environment"
    for url in livekit["webhook"]["urls"]:
        assert urlparse(url).hostname in services
    assert sip["sip_port"] == 5060
    dynamic = DEPLOY / "temporal" / "dynamicconfig"
    files = list(dynamic.glob("*.yaml"))
    assert files and all(isinstance(yaml.safe_load(f.read_text()), dict) for f in files)
    path = environment_of(services["temporal"])["DYNAMIC_CONFIG_FILE_PATH"]
    assert (dynamic / Path(path).name).is_file()


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "espeak-ng" in text and re.search(r"pip install \.(\s|$)", text)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")


def _compose_cli() -> list[str] | None:
    def answers(argv: list[str]) -> str | None:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    docker = shutil.which("docker")
    if docker and answers([docker, "compose", "version"]):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    version = answers([standalone, "version"]) if standalone else None
    if standalone and version and re.search(r"\bv?([2-9]|\d{2,})\.\d+", version):
        return [standalone]
    return None


def test_docker_compose_config_is_valid() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose v2 here: `docker compose version` fails and no docker-compose v2 on PATH")
    done = subprocess.run(
        [*cli, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
