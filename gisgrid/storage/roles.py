"""The runtime role: the login the web service uses, apart from the owner role that migrates (review54 F1).

The owner role (the embedded cluster's bootstrap superuser ``gisgrid``, or the role of ``GISGRID_DATABASE_URL``)
creates the extension, the tables and the functions, and runs the command line's imports and migrations. The web
service connects as a role that owns nothing and may only read and write rows (等保 2.0 最小权限): a SQL injection
or a stolen service password then cannot drop a table, create a database or run programs (``COPY … TO PROGRAM``).

What the service does at run time beyond SELECT/INSERT/UPDATE/DELETE, and how it is allowed:

- a year's case-number sequence is made on the year's first report (``make_case_no_sequence``, migration 0006):
  that function is made SECURITY DEFINER, owned by the owner role, with a fixed ``search_path``; the sequence is
  the owner's, and the default privileges below give the runtime role ``nextval`` on it. The runtime role gets no
  CREATE on the schema: it would let it make objects of its own, which it would own.
- ``LOCK TABLE`` (case intake, component and grid writes): allowed by UPDATE/DELETE on the table.
- temporary tables (``ON COMMIT DROP``: updating components through the API) need TEMPORARY on the database,
  which PostgreSQL gives PUBLIC; it is granted explicitly too, in case a DBA revoked it from PUBLIC.
- advisory locks and prepared statements need no privilege; the functions (triggers, ``next_case_no`` …) are
  EXECUTE for PUBLIC, as PostgreSQL makes them.
- the bulk path of a component import (dropping indexes and constraints, ``ANALYZE``) is the command line's only:
  it starts at 50,000 new rows, and the API writes one component at a time.

``alembic_version`` is readable only (``/health`` reports the migration); the extension's own tables
(``spatial_ref_sys``) keep the grants PostGIS gives them (SELECT for PUBLIC).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

#: What the runtime role may do with every table of the schema (``alembic_version``: SELECT only).
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
#: ... and with every sequence: ``nextval`` (USAGE or UPDATE), ``currval``/``SELECT``, ``setval`` (UPDATE).
SEQUENCE_PRIVILEGES = "USAGE, SELECT, UPDATE"
#: Tables the runtime role reads but never writes.
READ_ONLY_TABLES = ("alembic_version",)
#: The functions that make objects at run time, run with their owner's rights (see the module's text).
DEFINER_FUNCTIONS = ("make_case_no_sequence(integer)",)

#: The attributes of a runtime role gisgrid makes: a login, and nothing else.
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS"


def quote_ident(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def ensure_login_role(conn: Connection, role: str, password: str) -> bool:
    """Make ``role`` a login with ``password`` and no other attribute (:data:`ROLE_ATTRIBUTES`); an existing role
    is brought back to that (its password set again). True when the role was made. ``conn``: a superuser's (or a
    CREATEROLE role's), in autocommit."""
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar() is not None
    conn.exec_driver_sql("SET password_encryption = 'scram-sha-256'")
    verb = "ALTER" if exists else "CREATE"
    # psycopg2 quotes the password client-side (CREATE/ALTER ROLE take no server-side parameters).
    conn.exec_driver_sql(
        f"{verb} ROLE {quote_ident(conn, role)} WITH {ROLE_ATTRIBUTES} PASSWORD %(pw)s", {"pw": password}
    )
    return not exists


def grant_runtime_role(conn: Connection, role: str) -> None:
    """Give ``role`` what the web service needs in the database of ``conn`` (the owner's connection, after the
    migrations), and nothing more; idempotent. Also the default privileges for what the owner creates later (a new
    migration's tables, a year's case-number sequence), and :data:`DEFINER_FUNCTIONS` made SECURITY DEFINER."""
    who = quote_ident(conn, role)
    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    owner = conn.execute(text("SELECT current_user")).scalar_one()
    q_schema, q_owner = quote_ident(conn, schema), quote_ident(conn, owner)
    database = conn.execute(text("SELECT current_database()")).scalar_one()
    conn.exec_driver_sql(f"GRANT CONNECT, TEMPORARY ON DATABASE {quote_ident(conn, database)} TO {who}")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {q_schema} TO {who}")
    # The schema's own relations (an extension's — spatial_ref_sys, geometry_columns — keep PostGIS's grants).
    relations = conn.execute(
        text(
            """
            SELECT c.relname, c.relkind FROM pg_class c
            WHERE c.relnamespace = to_regnamespace(:schema) AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                              AND d.objid = c.oid AND d.deptype = 'e')
            ORDER BY c.relname
            """
        ),
        {"schema": schema},
    ).all()
    for name, kind in relations:
        target = f"{q_schema}.{quote_ident(conn, name)}"
        if kind == "S":
            conn.exec_driver_sql(f"GRANT {SEQUENCE_PRIVILEGES} ON SEQUENCE {target} TO {who}")
        elif kind in ("v", "m") or name in READ_ONLY_TABLES:
            conn.exec_driver_sql(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE {target} FROM {who}")
            conn.exec_driver_sql(f"GRANT SELECT ON TABLE {target} TO {who}")
        else:
            conn.exec_driver_sql(f"GRANT {TABLE_PRIVILEGES} ON TABLE {target} TO {who}")
    default = f"ALTER DEFAULT PRIVILEGES FOR ROLE {q_owner} IN SCHEMA {q_schema} GRANT"
    conn.exec_driver_sql(f"{default} {TABLE_PRIVILEGES} ON TABLES TO {who}")
    conn.exec_driver_sql(f"{default} {SEQUENCE_PRIVILEGES} ON SEQUENCES TO {who}")
    for function in DEFINER_FUNCTIONS:
        name = function.split("(", 1)[0]
        if conn.execute(text("SELECT to_regprocedure(:f)"), {"f": f"{schema}.{function}"}).scalar() is None:
            continue  # a database below migration 0006
        target = f"{q_schema}.{quote_ident(conn, name)}({function.split('(', 1)[1]}"
        # A SECURITY DEFINER function's search_path is fixed (pg_temp last), so no caller's object is taken for one
        # of the schema's.
        conn.exec_driver_sql(f"ALTER FUNCTION {target} SECURITY DEFINER SET search_path = {q_schema}, pg_temp")
        conn.exec_driver_sql(f"REVOKE EXECUTE ON FUNCTION {target} FROM PUBLIC")
        conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION {target} TO {who}")
