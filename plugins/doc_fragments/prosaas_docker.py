"""Documentation shared by the modules that talk to a Docker engine."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  docker_host:
    description: Engine URL, V(unix://), V(tcp://) or V(ssh://).
    type: str
    default: unix:///var/run/docker.sock
  api_timeout:
    description: Seconds before one call to the engine API times out.
    type: int
    default: 120
requirements:
  - docker (Python SDK) >= 7.0
"""
