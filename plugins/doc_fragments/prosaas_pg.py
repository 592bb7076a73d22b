"""Documentation shared by the modules that connect to PostgreSQL."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  dsn:
    description:
      - PostgreSQL connection string, a V(postgresql://) URL or V(key=value) pairs.
      - Never logged; messages show it as C(user@host:port/dbname).
    type: str
    required: true
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
requirements:
  - psycopg >= 3.1
"""
