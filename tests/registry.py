"""A private registry for the tests and the demo: Debian's docker-registry in a container
(tests/registry/Dockerfile), serving HTTPS with a certificate of a session CA, and htpasswd
auth. Images reach it through push_images, which pushes with the code of the docker_release
module (module_utils/prosaas_release.py, behind playbooks/release.yml), and are then pulled
by digest.

The session CA is made here with openssl, its key and certificate kept in the session's
folder. The registry's certificate names the container (test hosts on the registry's Docker
network reach it as `<name>:5000`), `localhost` and the IP 127.0.0.1 (its port published on
this machine's loopback, where pushes go). A Docker engine trusts a private CA for one
registry through /etc/docker/certs.d/<host[:port]>/ca.crt: a real operator's hosts get that
file from playbooks/prepare.yml (prosaas_registry_ca), and so do the test hosts here
(tests/playbooks/trust_registry.yml runs the prepare role's registry tasks); the `registry`
fixture (tests/conftest.py) writes it for this machine's engine for the session only.

Credentials: one user with a random password, put in the registry as a bcrypt htpasswd line.
A push hands them to the engine with each request (auth_config), as the release does: no
`docker login`, which would keep them in ~/.docker/config.json of the user who logged in,
base64, not encrypted, unless a credential helper is configured.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import secrets
import ssl
import subprocess
import tarfile
import time
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPException, HTTPMessage, HTTPSConnection
from pathlib import Path
from types import ModuleType
from typing import Any

import ansible.module_utils
import docker
from docker.errors import APIError, BuildError, DockerException

ROOT = Path(__file__).resolve().parent.parent
REGISTRY_IMAGE_DIR = ROOT / "tests" / "registry"
MODULE_UTILS = ROOT / "module_utils"
REGISTRY_PORT = 5000
READY_TIMEOUT_S = 30.0
# Where an engine on this machine looks for the CA of each registry.
ENGINE_CERTS_DIR = Path("/etc/docker/certs.d")
CERTIFICATE_DAYS = 2
# What an engine accepts for a manifest: the digest it answers with is the one a push printed.
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json,"
    "application/vnd.oci.image.manifest.v1+json"
)


class RegistryError(RuntimeError):
    """A registry that could not be built, started, reached or pushed to."""


def openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RegistryError(f"openssl {args[0]} failed: {result.stderr.strip()}")


@dataclass
class SessionCA:
    """A CA made for one test session: its key and certificate in FOLDER."""

    folder: Path

    @property
    def cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def key(self) -> Path:
        return self.folder / "ca.key"

    @classmethod
    def at(cls, folder: Path) -> SessionCA:
        """The CA in FOLDER, made there first if it holds none."""
        ca = cls(folder)
        if not ca.cert.exists():
            folder.mkdir(parents=True, exist_ok=True)
            openssl(
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", str(ca.key), "-out", str(ca.cert),
                "-days", str(CERTIFICATE_DAYS), "-subj", "/CN=prosaas-deploy tests CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            )  # fmt: skip
        return ca

    def issue(self, name: str, addresses: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """A server certificate and key for NAME, localhost, 127.0.0.1 and the IP ADDRESSES:
        (cert, key)."""
        folder = self.folder / name
        folder.mkdir()
        cert, key, request = folder / "registry.crt", folder / "registry.key", folder / "csr"
        extensions = folder / "extensions"
        names = ",".join(
            [f"DNS:{name}", "DNS:localhost", "IP:127.0.0.1"] + [f"IP:{ip}" for ip in addresses]
        )
        extensions.write_text(
            f"subjectAltName={names}\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n"
        )
        openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}",
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", str(request), "-CA", str(self.cert), "-CAkey", str(self.key),
            "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(CERTIFICATE_DAYS),
            "-extfile", str(extensions), "-out", str(cert),
        )  # fmt: skip
        return cert, key


@dataclass
class Registry:
    """One running registry: how it is reached, its account, its CA and what was pushed."""

    name: str
    network: str
    port: int
    user: str
    password: str = field(repr=False)
    ca: SessionCA
    container: Any
    digests: dict[str, str] = field(default_factory=dict)  # REPO:TAG -> sha256:...

    @property
    def address(self) -> str:
        """How the containers of its network reach it (and how their images name it)."""
        return f"{self.name}:{REGISTRY_PORT}"

    @property
    def ip_address(self) -> str:
        """Its address on its network, which its certificate names too: an address this
        machine and the containers of the network both reach it at."""
        self.container.reload()
        return self.container.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"]

    @property
    def loopback(self) -> str:
        """How this machine reaches it: its port published on loopback."""
        return f"127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.ca.cert

    def inventory_vars(self) -> dict[str, Any]:
        """The inventory settings of a deployment whose hosts pull from this registry."""
        return {
            "prosaas_registry": {"host": self.address, "user": self.user},
            "prosaas_registry_ca": self.ca.cert.read_text(),
        }

    def release_vars(
        self, address: str = "", *, migrate: str = "v2", password: str | None = None
    ) -> dict[str, Any]:
        """A deploy's settings for the demo app and MIGRATE's migrate image pulled from this
        registry at ADDRESS (.address by default), logging in with PASSWORD (its own)."""
        address = address or self.address
        return {
            "prosaas_registry": {"host": address, "user": self.user},
            "vault_prosaas_registry_password": self.password if password is None else password,
            "prosaas_app_image": f"{address}/prosaas-demo/app",
            "prosaas_migrate_image": f"{address}/prosaas-demo/migrate:{migrate}",
        }

    def get(
        self, path: str, *, auth: bool = True, method: str = "GET", accept: str | None = None
    ) -> tuple[int, HTTPMessage, bytes]:
        """An HTTPS request to PATH of its API from here, its certificate checked against
        the CA: (status, headers, body)."""
        headers = {"Accept": accept} if accept else {}
        if auth:
            token = b64encode(f"{self.user}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        context = ssl.create_default_context(cafile=str(self.ca.cert))
        connection = HTTPSConnection("127.0.0.1", self.port, context=context, timeout=10)
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def manifest_digest(self, ref: str) -> str:
        """The digest the registry serves for REPO:TAG (its Docker-Content-Digest)."""
        repo, tag = ref.rsplit(":", 1)
        status, headers, _ = self.get(
            f"/v2/{repo}/manifests/{tag}", method="HEAD", accept=MANIFEST_TYPES
        )
        if status != 200:
            raise RegistryError(f"{ref}: the registry answered {status}")
        return headers["Docker-Content-Digest"]


def registry_image(client: docker.DockerClient, base_image: str) -> str:
    """The registry image on BASE_IMAGE, built once per content of tests/registry/."""
    content = b"".join(
        (REGISTRY_IMAGE_DIR / name).read_bytes() for name in ("Dockerfile", "config.yml")
    )
    digest = hashlib.sha256(content + base_image.encode()).hexdigest()[:12]
    tag = f"prosaas-deploy/registry:{digest}"
    if not client.images.list(name=tag):
        try:
            client.images.build(
                path=str(REGISTRY_IMAGE_DIR),
                tag=tag,
                buildargs={"BASE_IMAGE": base_image},
                rm=True,
            )
        except (APIError, BuildError) as exc:
            raise RegistryError(f"could not build the registry image {tag}: {exc}") from exc
    return tag


def certificate_archive(cert: Path, key: Path) -> bytes:
    """A tar of the registry's certificate (0644) and key (0600), for put_archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, arcname, mode in ((cert, "registry.crt", 0o644), (key, "registry.key", 0o600)):
            info = tarfile.TarInfo(arcname)
            data = path.read_bytes()
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_htpasswd(container: Any, user: str, password: str) -> None:
    """The registry's one account, written inside by `htpasswd -Bbn` (bcrypt).

    The values come in the exec's environment, not its command line; the file is renamed
    into place whole, as the registry starts serving once it exists.
    """
    result = container.exec_run(
        ["sh", "-c", 'htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" > /auth/htpasswd.new'
         " && mv /auth/htpasswd.new /auth/htpasswd"],
        environment={"REGISTRY_USER": user, "REGISTRY_PASSWORD": password},
    )  # fmt: skip
    if result.exit_code != 0:
        raise RegistryError(f"htpasswd failed: {result.output.decode().strip()}")


def published_port(container: Any) -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][f"{REGISTRY_PORT}/tcp"][0]["HostPort"])


def wait_until_ready(registry: Registry) -> None:
    """Until an anonymous GET /v2/ over TLS (the CA checked) is refused with 401."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            if registry.get("/v2/", auth=False)[0] == 401:
                return
        except (OSError, HTTPException):
            pass  # not listening yet
        if time.monotonic() > deadline:
            logs = registry.container.logs(tail=20).decode(errors="replace")
            raise RegistryError(f"registry {registry.name} did not answer 401 on /v2/:\n{logs}")
        time.sleep(0.2)


def start_registry(
    client: docker.DockerClient,
    image: str,
    name: str,
    *,
    network: str,
    ca_folder: Path,
    user: str,
    password: str,
) -> Registry:
    """Run registry NAME on a new Docker network NETWORK, its port 5000 published on loopback.

    Its certificate comes from the session CA in CA_FOLDER (made there if missing) and names
    its address on NETWORK too (the container serves only once its accounts file exists, so
    the certificate is put in after the start has given it that address); its storage is the
    volume NAME-data. Returns once it answers 401 over TLS.
    """
    ca = SessionCA.at(ca_folder)
    labels = {"prosaas-tests": "registry"}
    client.networks.create(network, driver="bridge", labels=labels)
    try:
        container = client.containers.create(
            image,
            name=name,
            hostname=name,
            network=network,
            ports={f"{REGISTRY_PORT}/tcp": ("127.0.0.1", None)},
            volumes={f"{name}-data": {"bind": "/var/lib/docker-registry", "mode": "rw"}},
            labels=labels,
        )
        container.start()
        port = published_port(container)
        registry = Registry(name, network, port, user, password, ca, container)
        cert, key = ca.issue(name, (registry.ip_address,))
        container.put_archive("/certs", certificate_archive(cert, key))
        write_htpasswd(container, user, password)
        wait_until_ready(registry)
    except BaseException:
        remove_registry_objects(client, name, network)
        raise
    return registry


def remove_registry_objects(client: docker.DockerClient, name: str, network: str) -> None:
    """The container NAME, its volume and NETWORK, whichever exist."""
    for container in client.containers.list(all=True, filters={"name": f"^{name}$"}):
        container.remove(force=True)
    for volume in client.volumes.list(filters={"name": f"{name}-data"}):
        volume.remove(force=True)
    for found in client.networks.list(names=[network]):
        if found.name == network:
            found.remove()


def remove_registry(client: docker.DockerClient, registry: Registry) -> None:
    """The registry's container, volume and network, and the names the pushes and pulls
    left here (tags, and the digest references a pull or push records)."""
    prefix = f"{registry.loopback}/"
    for image in client.images.list():
        for name in image.tags + (image.attrs.get("RepoDigests") or []):
            if name.startswith(prefix):
                with contextlib.suppress(docker.errors.NotFound):
                    client.images.remove(name)
    remove_registry_objects(client, registry.name, registry.network)


@contextlib.contextmanager
def engine_trusts(registry: Registry, certs_dir: Path = ENGINE_CERTS_DIR) -> Iterator[Path]:
    """This machine's engine trusts the session CA for the registry's loopback address while
    the block runs: certs.d/127.0.0.1:<port>/ca.crt, removed after it (with the folders it
    made). An engine left at its defaults counts 127.0.0.0/8 as insecure registries and checks
    no certificate there; the file is what one configured without that default needs."""
    made_certs_dir = not certs_dir.exists()
    folder = certs_dir / registry.loopback
    folder.mkdir(parents=True, exist_ok=True)
    trusted = folder / "ca.crt"
    trusted.write_bytes(registry.ca.cert.read_bytes())
    trusted.chmod(0o644)
    try:
        yield trusted
    finally:
        trusted.unlink(missing_ok=True)
        for made in (folder, certs_dir) if made_certs_dir else (folder,):
            with contextlib.suppress(OSError):  # not empty: someone else's files stay
                made.rmdir()


def release_utils() -> ModuleType:
    """module_utils/prosaas_release.py, importable as Ansible ships it to the docker_release
    module (its siblings as ansible.module_utils.*)."""
    if str(MODULE_UTILS) not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(str(MODULE_UTILS))
    return importlib.import_module("ansible.module_utils.prosaas_release")


def push_images(registry: Registry, images: list[str]) -> dict[str, str]:
    """Push IMAGES of this machine's engine (DOCKER_HOST) to the loopback address, each under
    its own REPO:TAG or, given as IMAGE=REPO:TAG, under that one (a rebuilt image pushed
    under an existing tag), with the push of the docker_release module: {REPO:TAG: digest},
    also noted in registry.digests."""
    release = release_utils()
    client = docker.from_env(timeout=300)
    auth = {"username": registry.user, "password": registry.password}
    pushed = {}
    for image in images:
        source, _, name = image.partition("=")
        name = name or source
        target = f"{registry.loopback}/{name}"
        repository, tag = release.split_reference(target)
        try:
            client.images.get(source).tag(repository, tag)
            pushed[name] = release.push_image(client, target, auth)
        except (DockerException, release.ReleaseError) as exc:
            raise RegistryError(f"push of {source} as {target} failed: {exc}") from exc
    registry.digests |= pushed
    return pushed


@contextlib.contextmanager
def repushed(registry: Registry, image: str, ref: str) -> Iterator[str]:
    """IMAGE pushed under the existing REPO:TAG REF while the block runs (yields its digest);
    then REF's own image from this machine's engine goes back under it, at its old digest."""
    original = registry.digests[ref]
    try:
        yield push_images(registry, [f"{image}={ref}"])[ref]
    finally:
        restored = push_images(registry, [ref])[ref]
        if restored != original:
            raise RegistryError(f"{ref} came back as {restored}, not {original}")
