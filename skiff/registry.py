"""The local stand-in for ECR's registry: Debian's `docker-registry` on loopback with basic auth.

moto's ECR keeps repositories as records and hands out authorization tokens, but it serves no
registry, so nothing can be pushed to it or pulled from it. Locally a `docker-registry` process on
127.0.0.1 stands in (Docker trusts plain HTTP on 127.0.0.0/8), and the node agent maps the ECR host
named in a pod spec to it (`SKIFF_REGISTRY_MIRRORS`).

The agent logs in to it with the user `AWS` and the password decoded from moto's
`get_authorization_token`, exactly as it logs in to ECR on AWS. That works because moto 5.2.5 derives
the password from the registry id alone: `"<account id>-auth-token"`, the same on every call and in
every region (moto/ecr/responses.py). So the registry's htpasswd file holds that one password,
obtained the same way (`registry_password_from_ecr`), and no credential is shared out of band. Should
a later moto return a random password per call, a fixed htpasswd could no longer follow it; the
registry would then need a token-auth service that asks moto instead.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ECR_USER = "AWS"
DEFAULT_BINARY = Path("/usr/bin/docker-registry")


class RegistryError(Exception):
    """A reason the local registry cannot start or a push to it failed, worded for a person."""


@dataclass
class RegistryProcess:
    """A running `docker-registry`; `host` is what Docker calls it (`127.0.0.1:<port>`)."""

    host: str
    home: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float = 10) -> None:
        """Terminate the registry and wait for it (killed after `timeout` seconds)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def write_htpasswd(path: Path, user: str, password: str) -> None:
    """An htpasswd file with one bcrypt entry (docker-registry accepts bcrypt only)."""
    htpasswd = shutil.which("htpasswd")
    if htpasswd:
        proc = subprocess.run([htpasswd, "-Bbn", user, password], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RegistryError(f"htpasswd failed ({proc.returncode}): {proc.stderr.strip()}")
        line = proc.stdout.strip()
    else:
        try:
            import bcrypt  # type: ignore[import-not-found, unused-ignore]
        except ImportError as e:
            raise RegistryError("writing the registry's htpasswd needs `htpasswd` (Debian: apache2-utils) "
                                "or the Python package bcrypt; neither is installed") from e
        line = f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}"
    path.write_text(line + "\n")
    path.chmod(0o600)


def registry_config(*, root: Path, htpasswd: Path, host: str, port: int) -> str:
    """docker-registry's configuration: loopback only, filesystem storage, htpasswd basic auth."""
    # JSON is YAML: no YAML writer needed, and paths are quoted correctly.
    config = {
        "version": 0.1,
        "log": {"level": "info", "fields": {"service": "registry"}},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True},
                    "cache": {"blobdescriptor": "inmemory"}},
        "http": {"addr": f"{host}:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "auth": {"htpasswd": {"realm": "skiff-local-ecr", "path": str(htpasswd)}},
    }
    return json.dumps(config, indent=2) + "\n"


def _port_free(host: str, port: int) -> bool:
    from skiff.local import port_free

    return port_free(host, port)


def _answers_401(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback only
            return False  # an open registry: not the one we configured
    except urllib.error.HTTPError as e:
        return e.code == 401
    except OSError:
        return False


def start_registry(home: Path, port: int, password: str, *, host: str = "127.0.0.1", user: str = ECR_USER,
                   binary: Path = DEFAULT_BINARY, timeout: float = 20) -> RegistryProcess:
    """Start `docker-registry serve` with a generated configuration in `home` (storage, htpasswd, log
    there too) and return once `/v2/` asks for credentials (401)."""
    if not binary.exists():
        raise RegistryError(f"{binary} is missing; the local ECR stand-in needs Debian's docker-registry "
                            "(apt-get install docker-registry)")
    if not _port_free(host, port):
        raise RegistryError(f"port {port} on {host} is already in use, so the local registry cannot listen there; "
                            "stop what uses it or choose another port")
    home.mkdir(parents=True, exist_ok=True)
    root = home / "storage"
    root.mkdir(exist_ok=True)
    htpasswd = home / "htpasswd"
    write_htpasswd(htpasswd, user, password)
    config = home / "config.yml"
    config.write_text(registry_config(root=root, htpasswd=htpasswd, host=host, port=port))
    log_path = home / "registry.log"
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    try:
        proc = subprocess.Popen([str(binary), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        log.close()
    registry = RegistryProcess(host=f"{host}:{port}", home=home, log_path=log_path, process=proc)
    url = f"http://{host}:{port}/v2/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RegistryError(f"docker-registry exited with code {proc.returncode} before answering on "
                                f"{host}:{port}; {log_path} ends with:\n{_tail(log_path)}")
        if _answers_401(url):
            return registry
        time.sleep(0.05)
    registry.stop()
    raise RegistryError(f"docker-registry did not answer on {url} within {timeout:g} s; "
                        f"{log_path} ends with:\n{_tail(log_path)}")


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as e:
        return f"(cannot read it: {e})"


def registry_password_from_ecr(ecr_client: Any, registry_id: str | None = None) -> str:
    """The password ECR's `get_authorization_token` grants (its token is base64 of `AWS:<password>`)."""
    kwargs = {"registryIds": [registry_id]} if registry_id else {}
    data = ecr_client.get_authorization_token(**kwargs)["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    if user != ECR_USER or not password:
        raise RegistryError(f"ECR's authorization token is not for user {ECR_USER} (got {user!r})")
    return password


def ensure_repository(ecr_client: Any, name: str) -> dict[str, Any]:
    """The ECR repository `name`, created if absent (so describe_repositories and describe_images know it)."""
    try:
        repo: dict[str, Any] = ecr_client.create_repository(repositoryName=name)["repository"]
        return repo
    except ecr_client.exceptions.RepositoryAlreadyExistsException:
        found: dict[str, Any] = ecr_client.describe_repositories(repositoryNames=[name])["repositories"][0]
        return found


def push(docker_client: Any, local_image: str, repo_tag: str, registry_host: str, password: str, *,
         user: str = ECR_USER) -> str:
    """Tag `local_image` as `<registry_host>/<repo_tag>` and push it with basic auth; returns the
    manifest digest (`sha256:...`) the registry stored. `repo_tag` is `repository[:tag]` (tag `latest`
    when omitted). The local tag stays, as after `docker push`."""
    import docker.errors

    repository, sep, tag = repo_tag.rpartition(":")
    if not sep or "/" in tag:  # no tag (a colon before the last slash belongs to nothing we accept)
        repository, tag = repo_tag, "latest"
    target = f"{registry_host}/{repository}"
    try:
        docker_client.api.tag(local_image, target, tag)
    except docker.errors.ImageNotFound as e:
        raise RegistryError(f"cannot push {local_image}: no such image on this Docker engine") from e
    digest = None
    try:
        for message in docker_client.api.push(target, tag=tag, stream=True, decode=True,
                                              auth_config={"username": user, "password": password,
                                                           "serveraddress": registry_host}):
            if "error" in message:
                detail = message.get("errorDetail", {}).get("message") or message["error"]
                raise RegistryError(f"pushing {target}:{tag} failed: {detail}")
            aux = message.get("aux") or {}
            digest = aux.get("Digest", digest)
    except docker.errors.APIError as e:
        raise RegistryError(f"pushing {target}:{tag} failed: {e.explanation or e}") from e
    if not digest:
        raise RegistryError(f"pushing {target}:{tag} reported no digest")
    return str(digest)
