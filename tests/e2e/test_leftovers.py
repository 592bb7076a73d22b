"""What a killed test run leaves on an engine is removed when the scripts start that engine
(scripts/setup.sh remove_test_leftovers), and nothing else is: not a demo stack, not an
operator's containers. Run against an engine of its own, so the test stacks running beside
it on the main engine are not touched.
"""

from __future__ import annotations

import os
import subprocess

from tests.conftest import ROOT
from tests.engines import Engine

IMAGE = "prosaas-demo/redis:7"
LEFT = ("t0a1b2c3d-redis", "t-stop-0a1b2c3d", "tpx-0a1b2c-new", "pdreg-0a1b2c")
KEPT = ("redis", "prosaas-api", "team-tools")
VOLUMES = ("t0a1b2c3d-prosaas-pgdata", "pdhost-0a1b2c-docker", "prosaas-pgdata")


def test_an_engine_the_scripts_start_loses_what_killed_test_runs_left(
    second_engine: Engine,
) -> None:
    client = second_engine.client()
    try:
        client.networks.create("t0a1b2c3d-net")
        for volume in VOLUMES:
            client.volumes.create(volume)
        for name in LEFT + KEPT:
            client.containers.run(
                IMAGE, name=name, detach=True, restart_policy={"Name": "unless-stopped"}
            )
        swept = subprocess.run(
            ["bash", "-c", "source scripts/setup.sh && remove_test_leftovers"],
            cwd=ROOT,
            env={**os.environ, "DOCKER_HOST": second_engine.host},
            capture_output=True,
            text=True,
            check=False,
        )
        assert swept.returncode == 0, swept.stderr
        assert "4 containers, 1 networks, 2 volumes" in swept.stdout, swept.stdout
        assert {c.name for c in client.containers.list(all=True)} == set(KEPT)
        assert "t0a1b2c3d-net" not in {n.name for n in client.networks.list()}
        assert {v.name for v in client.volumes.list()} & set(VOLUMES) == {"prosaas-pgdata"}
    finally:
        for container in client.containers.list(all=True, filters={"name": list(LEFT + KEPT)}):
            container.remove(force=True)
        for volume in client.volumes.list(filters={"name": list(VOLUMES)}):
            volume.remove(force=True)
        for network in client.networks.list(names=["t0a1b2c3d-net"]):
            network.remove()
