"""Benchmark: pulling a release that changes only the app layer vs pulling the whole image.

    python bench/pull.py [--runs 3] [--out FILE.json]

A private registry of tests/registry.py (TLS, htpasswd) gets the demo images app and
migrate, v1 and v2. An engine of its own (tests/engines.py, a dockerd with its own data
root) pulls v2 of each image from it through a loopback relay (tests/relay.py) that counts
the bytes the registry sends, TLS included. Two states of the engine are compared:

- cold: the engine has no image (every image removed): v2 is the whole image;
- warm: the engine has v1, pulled from the same registry just before: only the layers v1
  lacks should come.

Each pull goes through the docker SDK as library/docker_pull.py does, its stream read by
PullProgress of module_utils/prosaas_pull.py (layers pulled, layers present, bytes); its
seconds run from the request to the stream's end. The states alternate from run to run.
It prints markdown tables of medians, warm/cold ratios and the target, and writes every
figure to a JSON file. The registry, the engine and the relay are removed at the end, even
on failure or SIGTERM; the main engine only hosts the registry and keeps its own images.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
from common import (
    ROOT,
    BenchError,
    Spread,
    Target,
    base_image,
    command_line,
    default_out,
    docker_client,
    host_info,
    note,
    target_lines,
    write_results,
)
from docker.errors import DockerException, NotFound

from tests.engines import Engine, EngineError
from tests.registry import (
    MANIFEST_TYPES,
    Registry,
    RegistryError,
    engine_trusts,
    push_images,
    registry_image,
    remove_registry,
    start_registry,
)
from tests.relay import Relay

sys.path.insert(0, str(ROOT / "module_utils"))
from prosaas_pull import PullProgress, split_reference

IMAGES = {"app": "prosaas-demo/app", "migrate": "prosaas-demo/migrate"}
OLD, NEW = "v1", "v2"
STATES = ("cold", "warm")
STATE_TEXT = {"cold": "cold (no image on the engine)", "warm": f"warm ({OLD} on the engine)"}
REGISTRY_USER = "prosaas-bench"
# The bench engine's networks: apart from the test engines' (tests/e2e/conftest.py uses
# 10.213/10.214 and pdtest0, tests/e2e/test_many_hosts.py 10.215/10.216 and pdtest1).
ENGINE_ADDRESS_POOL = "10.217.0.0/16"
ENGINE_BRIDGE = "pdbench0"
ENGINE_BRIDGE_ADDRESS = "10.218.0.1/24"


# --- what one pull moved -------------------------------------------------------------


@dataclass(frozen=True)
class PullResult:
    """One measured pull of IMAGE's new release on an engine in STATE."""

    image: str
    state: str
    run: int
    digest: str
    wire_bytes: int  # what the registry sent through the relay, TLS and HTTP included
    stream_bytes: int  # PullProgress: the sizes of the layers the engine downloaded
    layers_pulled: int
    layers_present: int
    seconds: float


@dataclass(frozen=True)
class Blobs:
    """What the registry stores for an image's new release, against its old one (sizes as
    stored: compressed)."""

    image: str
    layers: int
    layer_bytes: int
    config_bytes: int
    new_layers: int  # layers of the new release that the old one does not have
    new_layer_bytes: int


def manifest(registry: Registry, ref: str) -> dict[str, Any]:
    repository, tag = split_reference(ref)
    status, _, body = registry.get(f"/v2/{repository}/manifests/{tag}", accept=MANIFEST_TYPES)
    if status != 200:
        raise BenchError(f"{ref}: the registry answered {status} for its manifest")
    return json.loads(body)


def blobs_of(registry: Registry, image: str) -> Blobs:
    new = manifest(registry, f"{IMAGES[image]}:{NEW}")
    old_digests = {
        layer["digest"] for layer in manifest(registry, f"{IMAGES[image]}:{OLD}")["layers"]
    }
    added = [layer for layer in new["layers"] if layer["digest"] not in old_digests]
    return Blobs(
        image,
        layers=len(new["layers"]),
        layer_bytes=sum(layer["size"] for layer in new["layers"]),
        config_bytes=new["config"]["size"],
        new_layers=len(added),
        new_layer_bytes=sum(layer["size"] for layer in added),
    )


class Puller:
    """Pulls from the registry on the bench engine, as docker_pull does, through the relay."""

    def __init__(self, client: docker.DockerClient, relay: Relay, registry: Registry) -> None:
        self.client = client
        self.relay = relay
        self.registry = registry
        self.auth = {"username": registry.user, "password": registry.password}

    def reference(self, image: str, version: str) -> str:
        return f"{self.relay.address}/{IMAGES[image]}:{version}"

    def pull(self, image: str, version: str) -> tuple[PullProgress, int, float]:
        """IMAGE:VERSION pulled: what the stream said, the bytes on the wire, the seconds."""
        repository, tag = split_reference(self.reference(image, version))
        progress = PullProgress()
        before = self.relay.bytes_from_server
        started = time.monotonic()
        stream = self.client.api.pull(
            repository, tag=tag, stream=True, decode=True, auth_config=self.auth
        )
        for event in stream:
            progress.read(event)
        seconds = time.monotonic() - started
        if progress.error:
            raise BenchError(f"pull of {image}:{version} failed: {progress.error}")
        return progress, self.relay.bytes_from_server - before, seconds

    def reset(self) -> None:
        """No image left on the bench engine (so none of their layers either)."""
        for image in self.client.images.list(all=True):
            with suppress(NotFound):
                self.client.images.remove(image.id, force=True)
        left = self.client.images.list(all=True)
        if left:
            raise BenchError(f"images left on the bench engine after the reset: {left}")

    def measure(self, image: str, state: str, run: int) -> PullResult:
        """From the state STATE, pull IMAGE's new release; a state not as meant raises."""
        self.reset()
        if state == "warm":
            self.pull(image, OLD)
        progress, wire_bytes, seconds = self.pull(image, NEW)
        expected = self.registry.digests[f"{IMAGES[image]}:{NEW}"]
        if progress.digest != expected:
            raise BenchError(f"{image}:{NEW} came as {progress.digest}, pushed as {expected}")
        summary = progress.summary()
        if (summary["layers_present"] > 0) != (state == "warm"):
            raise BenchError(
                f"{state} pull of {image}:{NEW} found {summary['layers_present']} layer(s)"
                " already on the engine: the reset or the warm-up did not do its part"
            )
        return PullResult(
            image,
            state,
            run,
            progress.digest,
            wire_bytes,
            summary["bytes_pulled"],
            summary["layers_pulled"],
            summary["layers_present"],
            round(seconds, 2),
        )


def run_pulls(puller: Puller, runs: int) -> list[PullResult]:
    """RUNS runs of each image in each state, the order of the states alternating."""
    results = []
    for run in range(1, runs + 1):
        states = STATES if run % 2 else STATES[::-1]
        for image in IMAGES:
            for state in states:
                result = puller.measure(image, state, run)
                note(
                    f"run {run}, {image} {state}: {result.wire_bytes:,} bytes on the wire,"
                    f" {result.layers_pulled} layer(s) pulled, {result.seconds} s"
                )
                results.append(result)
    return results


# --- the set-up ------------------------------------------------------------------------


def exit_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM or SIGHUP: leave through the clean-up; the bench engine runs in a session of
    its own and would outlive a plain kill of this process."""
    raise SystemExit(128 + signum)


@contextmanager
def bench_registry(client: docker.DockerClient, base: Path) -> Iterator[Registry]:
    """A registry of tests/registry.py with the demo images' two releases pushed; removed
    after the block, with the names the pushes left on the main engine."""
    name = f"bench-{uuid.uuid4().hex[:6]}-registry"
    note(f"starting registry {name} and pushing {OLD} and {NEW} of {', '.join(IMAGES)}")
    registry = start_registry(
        client,
        registry_image(client, base_image(client)),
        name,
        network=f"{name}-net",
        ca_folder=base / "registry",
        user=REGISTRY_USER,
        password=secrets.token_urlsafe(24),
    )
    try:
        with engine_trusts(registry):
            push_images(registry, [f"{repo}:{v}" for repo in IMAGES.values() for v in (OLD, NEW)])
            yield registry
    finally:
        remove_registry(client, registry)


@contextmanager
def bench_engine(base: Path) -> Iterator[Engine]:
    """A dockerd of its own, no image on it; stopped and its files removed after the block."""
    engine = Engine(base / "engine", ENGINE_ADDRESS_POOL, ENGINE_BRIDGE, ENGINE_BRIDGE_ADDRESS)
    note(f"starting a Docker engine of its own at {engine.host}")
    try:
        engine.start()
        yield engine
    finally:
        engine.remove()


def measure_all(runs: int) -> tuple[list[PullResult], list[Blobs], str]:
    """The pulls, the registry's figures and the bench engine's version."""
    client = docker_client()
    missing = [
        f"{r}:{v}"
        for r in IMAGES.values()
        for v in (OLD, NEW)
        if not client.images.list(name=f"{r}:{v}")
    ]
    if missing:
        raise BenchError(f"images missing: {', '.join(missing)}; run scripts/test.sh")
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp, ExitStack() as stack:
        registry = stack.enter_context(bench_registry(client, Path(tmp)))
        relay = Relay(registry.port)
        stack.callback(relay.close)
        engine = stack.enter_context(bench_engine(Path(tmp)))
        bench_client = engine.client()
        stack.callback(bench_client.close)
        blobs = [blobs_of(registry, image) for image in IMAGES]
        results = run_pulls(Puller(bench_client, relay, registry), runs)
        return results, blobs, bench_client.version()["Version"]


# --- the figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """The medians (with the lowest and highest) of one image in one state."""

    image: str
    state: str
    runs: int
    wire_bytes: Spread
    stream_bytes: Spread
    layers_pulled: Spread
    layers_present: Spread
    seconds: Spread


def spread(values: list[float], ndigits: int = 0) -> Spread:
    found = Spread.of(values, ndigits)
    if found is None:
        raise BenchError("no pull was measured")
    return found


def summarise(results: list[PullResult]) -> list[Row]:
    rows = []
    for image in IMAGES:
        for state in STATES:
            mine = [r for r in results if r.image == image and r.state == state]
            rows.append(
                Row(
                    image,
                    state,
                    len(mine),
                    spread([r.wire_bytes for r in mine]),
                    spread([r.stream_bytes for r in mine]),
                    spread([r.layers_pulled for r in mine]),
                    spread([r.layers_present for r in mine]),
                    spread([r.seconds for r in mine], 2),
                )
            )
    return rows


def ratios(rows: list[Row]) -> dict[str, dict[str, float]]:
    """Per image, warm / cold of the medians: bytes on the wire, bytes in the stream, seconds."""
    by_key = {(row.image, row.state): row for row in rows}
    found = {}
    for image in IMAGES:
        cold, warm = by_key[(image, "cold")], by_key[(image, "warm")]
        found[image] = {
            name: round(getattr(warm, name).median / getattr(cold, name).median, 5)
            for name in ("wire_bytes", "stream_bytes", "seconds")
        }
    return found


def beyond_blobs(rows: list[Row], blobs: list[Blobs]) -> dict[str, int]:
    """Per image and state, the median bytes on the wire beyond the layers pulled and the
    image's config: the manifest, the TLS handshakes and records, HTTP."""
    config = {blob.image: blob.config_bytes for blob in blobs}
    return {
        f"{row.image} {row.state}": round(
            row.wire_bytes.median - row.stream_bytes.median - config[row.image]
        )
        for row in rows
    }


def targets(results: list[PullResult], blobs: list[Blobs]) -> list[Target]:
    """The claim: a warm pull fetches the layers v1 lacks, and nothing else."""
    goals = []
    for blob in blobs:
        warm = [r for r in results if r.image == blob.image and r.state == "warm"]
        met = all(
            r.layers_pulled == blob.new_layers
            and r.layers_present == blob.layers - blob.new_layers
            and r.stream_bytes == blob.new_layer_bytes
            for r in warm
        )
        pulled = sorted({r.layers_pulled for r in warm})
        goals.append(
            Target(
                f"{blob.image} {NEW} on an engine with {OLD} pulls only the layers {OLD} lacks",
                met,
                f"{'/'.join(map(str, pulled))} layer(s) pulled ({len(warm)} runs); {OLD} lacks"
                f" {blob.new_layers} of {blob.layers} ({blob.new_layer_bytes:,} of"
                f" {blob.layer_bytes:,} bytes)",
            )
        )
    return goals


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| image | engine | runs | bytes on the wire | bytes in the stream | layers pulled"
        " | layers present | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row.image} {NEW} | {STATE_TEXT[row.state]} | {row.runs}"
        f" | {row.wire_bytes.text(0)} | {row.stream_bytes.text(0)}"
        f" | {row.layers_pulled.text(0)} | {row.layers_present.text(0)}"
        f" | {row.seconds.text(2)} |"
        for row in rows
    ]
    return "\n".join(lines)


def blobs_table(blobs: list[Blobs]) -> str:
    lines = [
        f"| image | layers | layer bytes | config bytes | layers not in {OLD} | their bytes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {b.image} {NEW} | {b.layers} | {b.layer_bytes:,} | {b.config_bytes:,}"
        f" | {b.new_layers} | {b.new_layer_bytes:,} |"
        for b in blobs
    ]
    return "\n".join(lines)


def report_text(rows: list[Row], blobs: list[Blobs], goals: list[Target]) -> str:
    lines = [markdown_table(rows), "", "What the registry stores (compressed):", ""]
    lines += [blobs_table(blobs), "", "Warm / cold, medians:"]
    lines += [
        f"- {image}: bytes on the wire {r['wire_bytes']:.5f}x, bytes in the stream"
        f" {r['stream_bytes']:.5f}x, seconds {r['seconds']:.2f}x"
        for image, r in ratios(rows).items()
    ]
    lines += ["", "Bytes on the wire beyond the layers and the config (manifest, TLS, HTTP):"]
    lines += [f"- {key}: {value:,}" for key, value in beyond_blobs(rows, blobs).items()]
    lines += ["", "Targets:", *target_lines(goals)]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace, started: datetime) -> dict[str, Any]:
    machine = host_info()
    try:
        results, blobs, engine_version = measure_all(args.runs)
    except (DockerException, RegistryError, EngineError, subprocess.CalledProcessError) as exc:
        raise BenchError(" ".join(str(exc).split())) from None
    machine["load_average_at_end"] = os.getloadavg()
    machine["bench_engine_docker"] = engine_version
    rows = summarise(results)
    goals = targets(results, blobs)
    print(report_text(rows, blobs, goals), flush=True)
    return {
        "benchmark": f"pull {NEW} on a cold engine vs one with {OLD}: bytes and seconds",
        "command": command_line(sys.argv),
        "started_at": started.isoformat(timespec="seconds"),
        "runs": args.runs,
        "machine": machine,
        "registry": [asdict(b) for b in blobs],
        "summary": [asdict(row) for row in rows],
        "warm_over_cold": ratios(rows),
        "wire_bytes_beyond_blobs": beyond_blobs(rows, blobs),
        "targets": [asdict(t) for t in goals],
        "results": [asdict(r) for r in results],
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--runs", type=int, default=3, help="runs of each state (default 3)")
    parser.add_argument(
        "--out", type=Path, help="JSON file (default bench/results/pull-<UTC stamp>.json)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, exit_on_signal)
    started = datetime.now(UTC)
    out = args.out or default_out("pull", started)
    return write_results(lambda: run_benchmark(args, started), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
