"""Ansible lookup: the columns the migration files' headers declare, for pg_schema_verify."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
---
name: migration_columns
short_description: Expected columns, read from the migration files' own headers
description:
  - "Reads the C(-- adds-column: table.column type) header lines of the migration files
    (C(migrations/versions/NNNN_slug.sql)) and returns them as table name to a mapping of
    column name to type name, the form the C(pg_schema_verify) module takes in its
    C(columns) option."
  - The expectation is so written once, in the migration. The headers are parsed by the
    migration runner's own code (C(migrator.files) in the repository's C(migrations/)
    folder), so the verify step and the runner cannot disagree on them.
  - When several chosen migrations declare the same column, the later version wins.
  - Runs on the control node, where the migration files are; its result is passed to the
    module as a parameter.
version_added: "0.1.0"
author: prosaas-deploy
options:
  dir:
    description:
      - Folder of the migration files.
      - A relative path is looked up in the playbook's folder, then in each of its parents
        in turn (so V(migrations/versions) is found from C(playbooks/) and from
        C(tests/playbooks/) alike, in the repository root); the first folder that has it
        wins. C(~) is expanded.
    type: str
    default: migrations/versions
  versions:
    description:
      - Versions to take the columns from, e.g. V([1, 109]); each must exist.
      - Mutually exclusive with O(up_to). With neither, every migration is taken.
    type: list
    elements: int
  up_to:
    description:
      - Take every migration up to this version, included.
      - Mutually exclusive with O(versions).
    type: int
notes:
  - Errors (no such folder, a badly named file, a bad header, a duplicate or unknown
    version) fail the task with one line naming the file.
  - Use C(lookup) (not C(query)) to get the mapping itself rather than a list holding it.
"""

EXAMPLES = r"""
- name: Check the columns migration 109 adds
  pg_schema_verify:
    dsn: "{{ prosaas_database_url }}"
    columns: "{{ lookup('migration_columns', versions=[109]) }}"

- name: Check every column declared up to the release's last migration
  pg_schema_verify:
    dsn: "{{ prosaas_database_url }}"
    columns: "{{ lookup('migration_columns', dir='migrations/versions', up_to=109) }}"
"""

RETURN = r"""
_raw:
  description:
    - One mapping of table name to a mapping of column name to type name, as written in
      the headers (lower case, spaces collapsed).
  type: list
  elements: dict
  sample: [{"call_log": {"started_at": "timestamp", "ended_at": "timestamp",
                         "duration_sec": "integer"}}]
"""

# plugins/lookup/migration_columns.py -> the repository root, whose migrations/ holds migrator
MIGRATIONS_PACKAGE_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrator_files() -> Any:
    """The runner's header parser, migrator.files, imported from the repository."""
    if str(MIGRATIONS_PACKAGE_DIR) not in sys.path:
        sys.path.insert(0, str(MIGRATIONS_PACKAGE_DIR))
    try:
        from migrator import files  # noqa: PLC0415 - needs the path set up just above
    except ImportError as exc:
        raise AnsibleLookupError(
            f"migration_columns: cannot import migrator.files from {MIGRATIONS_PACKAGE_DIR}: {exc}"
        ) from None
    return files


def resolve_dir(directory: str, basedir: str | None) -> Path:
    """An absolute dir as is; a relative one from the playbook's folder or its nearest parent."""
    path = Path(directory).expanduser()
    if path.is_absolute():
        return path
    start = Path(basedir or ".").resolve()
    for folder in (start, *start.parents):
        if (folder / path).is_dir():
            return folder / path
    raise AnsibleLookupError(
        f"migration_columns: no folder {directory} in {start} or any of its parents"
    )


def columns_of(migrations: list[Any]) -> dict[str, dict[str, str]]:
    """table -> {column: type}, in version order, so a later migration wins."""
    found: dict[str, dict[str, str]] = {}
    for migration in sorted(migrations, key=lambda m: m.version):
        for column in migration.columns:
            found.setdefault(column.table, {})[column.name] = column.type
    return found


def choose(migrations: list[Any], versions: list[int] | None, up_to: int | None) -> list[Any]:
    if versions is not None:
        by_version = {migration.version: migration for migration in migrations}
        unknown = sorted(set(versions) - set(by_version))
        if unknown:
            raise AnsibleLookupError(
                "migration_columns: no migration file for version(s) "
                + ", ".join(f"{version:04d}" for version in unknown)
            )
        return [by_version[version] for version in sorted(set(versions))]
    if up_to is not None:
        return [migration for migration in migrations if migration.version <= up_to]
    return migrations


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any):
        if terms:
            raise AnsibleLookupError(
                "migration_columns takes no terms, only dir=, versions= or up_to="
            )
        self.set_options(var_options=variables, direct=kwargs)
        versions = self.get_option("versions")
        up_to = self.get_option("up_to")
        if versions is not None and up_to is not None:
            raise AnsibleLookupError("migration_columns: versions and up_to are mutually exclusive")
        files = migrator_files()
        directory = resolve_dir(self.get_option("dir"), self._loader.get_basedir())
        try:
            migrations = files.load_migrations(directory)
        except (files.MigrationFileError, OSError, UnicodeDecodeError) as exc:
            raise AnsibleLookupError(f"migration_columns: {exc}") from None
        return [columns_of(choose(migrations, versions, up_to))]
