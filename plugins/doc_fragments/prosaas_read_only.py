"""Documentation shared by the modules that only read: same run in check mode, no diff."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
    description: Reads only; runs (and waits) the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
"""
