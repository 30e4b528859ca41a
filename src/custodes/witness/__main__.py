"""``python -m custodes.witness``: the witness server alone, for hosts that run nothing else.

Same options as ``custodes witness serve``; it imports only the witness and its dependencies.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from custodes.errors import Error
from custodes.witness._run import read_log_keys, serve_witness


def main(argv: list[str] | None = None) -> int:
    """Parse the options and serve until interrupted.

    Args:
        argv: the options (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 after a clean stop, 1 after an error (its diagnostics printed).
    """
    parser = argparse.ArgumentParser(
        prog="python -m custodes.witness", description="Run a C2SP tlog-witness server."
    )
    parser.add_argument("--key", type=Path, required=True, help="the witness's private key file")
    parser.add_argument("--db", required=True, help="database URL of the witness's state")
    parser.add_argument("--log", action="append", default=[], help="a log's verifier key")
    parser.add_argument("--logs-file", type=Path, default=None, help="file of log vkeys")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        logs = read_log_keys(args.log, args.logs_file)
        serve_witness(args.key, args.db, logs, host=args.host, port=args.port, workers=args.workers)
    except Error as exc:
        print(f"error: {exc.diagnostics()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
