"""Documentation shared by the modules that log in to the release's registry."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  registry:
    description:
      - The registry the images are named under, and the user to log in as; empty for none
        (anonymous pulls).
    type: dict
    default: {}
    suboptions:
      host:
        description: Registry host and port, as in the image references.
        type: str
      user:
        description: User to log in as.
        type: str
  registry_password:
    description: Password of O(registry.user). Never logged.
    type: str
    default: ""
"""
