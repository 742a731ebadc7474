"""The ``unlearn-studio`` command: no arguments opens the window; subcommands run headless."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import traceback
from collections.abc import Callable, Sequence

from . import __version__
from .cli_common import add_model_arguments, open_session, progress_printer
from .errors import USER_ERRORS

Handler = Callable[[argparse.Namespace], int]


def cmd_info(args: argparse.Namespace) -> int:
    session = open_session(args)
    print(json.dumps(session.describe(), indent=2))
    return 0


def cmd_fetch_demo(args: argparse.Namespace) -> int:
    from .engine.demo import ensure_demo_model

    path = ensure_demo_model(progress_printer(args.quiet))
    print(path)
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    from .gui.app import run_app

    return run_app(sys.argv[:1])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlearn-studio",
        description="SAE-guided unlearning of entities from causal language models. With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"unlearn-studio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = commands.add_parser("info", help="print a model's and an SAE's description as JSON")
    add_model_arguments(info)
    info.set_defaults(handler=cmd_info)

    fetch = commands.add_parser("fetch-demo", help="fetch and convert the embedded demo model (once)")
    fetch.set_defaults(handler=cmd_fetch_demo)

    gui = commands.add_parser("gui", help="open the desktop application (the default)")
    gui.set_defaults(handler=cmd_gui)

    from .cli_commands import register_commands
    from .cli_steer import register_steer

    register_commands(commands)
    from .cli_runs import register as register_runs

    register_runs(commands)
    register_steer(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = getattr(args, "handler", cmd_gui)
    cancel = threading.Event()
    args.cancel = cancel
    try:
        return handler(args)
    except KeyboardInterrupt:
        cancel.set()
        print("unlearn-studio: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if args.debug:
            traceback.print_exc()
        print(f"unlearn-studio: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - no traceback without --debug, whatever went wrong
        if args.debug:
            traceback.print_exc()
        print(f"unlearn-studio: error: {unexpected_error_line(error)}", file=sys.stderr)
        return 3 if type(error).__name__ == "OutOfMemoryError" else 1


def one_line(text: str) -> str:
    return " ".join(text.split())


def unexpected_error_line(error: BaseException) -> str:
    """One line for an error that is not a UserError: out of memory, a file the system refused, or a bug."""
    if type(error).__name__ == "OutOfMemoryError" or isinstance(error, MemoryError):  # torch's, without importing it
        return ("out of memory: lower the trainable layers (--layers-below), use --dtype bfloat16 "
                "(half the memory; it learns as in float32), or a smaller model or device.")
    if isinstance(error, OSError) and error.filename:
        from .errors import os_reason

        return f"cannot use {error.filename}: {os_reason(error)}. Check the path and its permissions."
    text = one_line(str(error))[:300]
    return (f"unexpected {type(error).__name__}{': ' + text if text else ''}. "
            "Rerun with --debug for the traceback, and please report it.")


if __name__ == "__main__":
    sys.exit(main())
