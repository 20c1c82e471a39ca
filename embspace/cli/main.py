"""`embspace` (or `python -m embspace`): the parser built from each command group, and one dispatch for all.

Each group module (`tables`, `atlas`, `annotations`) adds its subcommands and returns {command: run function};
`main` opens the model once and hands it to the chosen command's run function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from embspace import EmbspaceError, open_model
from embspace.cli import annotations, atlas, compare, concepts, svd, tables, tours
from embspace.cli.args import OneLineParser, filter_arguments, model_arguments, model_source
from embspace.runtime import configure as configure_runtime

PROG = "embspace"  # the console script; `python -m embspace` passes its own


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The whole command line; each subcommand's run function is its `run_command` default."""
    parser = OneLineParser(prog=prog, description="Read transformer weights in the vocabulary (Dar et al., ACL 2023).")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    model_args, filter_args = model_arguments(), filter_arguments()
    runners = {
        **tables.register(commands, model_args, filter_args),  # info, neuron, pairs, export, copying
        **atlas.register(commands, model_args, filter_args),  # atlas build, search
        **annotations.register(commands, model_args),  # annotations set|list|export|import
        **svd.register(commands, model_args, filter_args),  # svd
        **concepts.register(commands, model_args, filter_args),  # concepts
        **compare.register(commands, filter_args),  # diff, align (two models)
        **tours.register(commands),  # tour export|list|show|import|delete (opens its tour's own model)
    }
    for command, run in runners.items():
        commands.choices[command].set_defaults(run_command=run)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Run one command; the exit status: 0 done, 2 bad input (one `error:` line on stderr), 130 interrupted.

    A usage mistake exits 2 through argparse (SystemExit), as every argparse program does.
    """
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    source = model_source(args, parser)
    configure_runtime()  # threads and matmul precision, once per process
    try:
        opens_model = getattr(args, "opens_model", True)  # `tour` opens the model its tour file names
        model = open_model(source, revision=args.revision, embedding=args.embedding) if opens_model else None
        args.run_command(args, model)
    except KeyboardInterrupt:
        print("\ninterrupted" if getattr(args, "progress_line", False) else "interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # bad input must end in one clear line, not a traceback
        if args.debug:
            raise
        message = str(err) if isinstance(err, (EmbspaceError, OSError, ValueError)) else f"{type(err).__name__}: {err}"
        lines = message.strip().splitlines() or [type(err).__name__]
        print(f"error: {lines[0]}", file=sys.stderr)
        return 2
    return 0
