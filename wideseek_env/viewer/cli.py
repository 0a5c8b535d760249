"""``wideseek view``: write the episodes of one or more runs as one self-contained HTML page, or
serve it live while an eval runs (``--serve``).

Examples::

    wideseek view runs/w8                      # -> runs/w8/view.html
    wideseek view runs/bench-width             # every width of a benchmark, one page
    wideseek view runs/a runs/b --out ab.html  # two runs side by side in the list
    wideseek view runs/w8 --serve              # http://127.0.0.1:8765/, follows the trace file
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="RUN_DIR|episodes.jsonl",
                        help="a run folder (wideseek eval --out), a trace file, or a "
                             "`wideseek bench` folder (all its widths or turn budgets)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the HTML file (default: <run folder>/view.html, or <trace>.html "
                             "beside a trace file)")
    parser.add_argument("--title", default=None, help="page title")
    parser.add_argument("--max-message-chars", type=int, default=0,
                        help="cut every message to this many characters to keep the page small "
                             "(default 0: keep everything)")
    parser.add_argument("--serve", action="store_true",
                        help="serve the page on a local port and follow the trace files "
                             "(new episodes appear while an eval runs) instead of writing a file")
    parser.add_argument("--host", default="127.0.0.1", help="with --serve (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="with --serve (default 8765; 0: any)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from wideseek_env.viewer.data import ViewError

    if args.max_message_chars < 0:
        print("wideseek view: error: --max-message-chars must be >= 0", file=sys.stderr)
        return 2
    try:
        if args.serve:
            return _serve(args)
        from wideseek_env.viewer.page import write_view

        result = write_view(args.paths, args.out, title=args.title,
                            max_message_chars=args.max_message_chars, progress=not args.quiet)
    except (ViewError, ValueError) as err:
        print(f"wideseek view: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {result.path}: {result.episodes} episodes from {result.runs} run(s), "
          f"{result.size_bytes / 1e6:.1f} MB")
    print(f"open {result.path.resolve().as_uri()}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from wideseek_env.viewer.serve import LiveView, make_server

    view = LiveView(args.paths, title=args.title, max_message_chars=args.max_message_chars)
    server = make_server(view, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"serving {len(view.index)} episodes (following the trace files) at "
          f"http://{host}:{port}/ ; Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
