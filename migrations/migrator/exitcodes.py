"""Exit codes of ``python -m migrator``: one per way a run can end, so callers can act on it."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # applied what was pending, or nothing was pending
    LINT_FINDINGS = 1  # lint: at least one unsafe statement found
    USAGE = 2  # bad command line or missing DATABASE_URL
    CANNOT_CONNECT = 3  # the database did not answer or refused the credentials
    BAD_MIGRATION_FILE = 4  # misnamed, empty or malformed file, duplicate version
    CHECKSUM_MISMATCH = 5  # an applied file was changed afterwards
    SQL_ERROR = 6  # a migration failed; its transaction was rolled back
    LOCK_BUDGET_EXHAUSTED = 7  # could not get the table lock within the retry budget
    VERIFY_FAILED = 8  # a declared column is missing or has another type
    RUNNER_LOCK_TIMEOUT = 9  # another runner held the advisory lock for too long
    ONLINE_BOUND_EXCEEDED = 10  # up --online: a statement blocked a table past the bound
