"""``python -m modreg.registry``: run a registry server (``modreg server`` does the same)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modreg.registry.errors import ModregError

MIB = 1024 * 1024


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m modreg.registry",
        description="Run a modreg registry server (SQLite in --data unless --db is given).",
        epilog="example: python -m modreg.registry --data ./registry-data --port 8470",
    )
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8470)")
    parser.add_argument("--db", dest="db_url", help="database URL, e.g. postgresql+psycopg://…")
    parser.add_argument("--data", dest="data_dir", help="data folder: blobs, SQLite, admin token")
    parser.add_argument(
        "--private", action="store_const", const=True, help="reading needs a token of the team"
    )
    parser.add_argument("--max-upload", type=int, metavar="MIB", help="upload limit in MiB")
    parser.add_argument("--blob-url", help="fsspec URL for blobs instead of DATA/blobs")
    parser.add_argument("--access-log", action="store_const", const=True, help="log requests")
    parser.add_argument(
        "--cache-retention", help="cache entries expire after this long, e.g. 90d (default never)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    from modreg.registry.server import serve
    from modreg.registry.settings import Settings

    args = vars(parse_args(argv))
    max_upload = args.pop("max_upload")
    if max_upload is not None:
        args["max_upload_bytes"] = max_upload * MIB
    try:
        settings = Settings.from_env(**args)
        serve(settings)
    except (ModregError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
