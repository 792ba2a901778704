"""The contrastkit command line."""

from __future__ import annotations

import sys

import typer

from contrastkit.core.errors import ContrastkitError

app = typer.Typer(
    name="contrastkit",
    help="Contrastive self-supervised pretraining for time series, event sequences, graphs, point clouds and volumes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _compose() -> typer.Typer:
    from . import config, evaluate, export, info, pretrain, views

    for module in (info, pretrain, export, evaluate, views, config):
        module.add_to(app)
    from contrastkit.core.plugins import get_host

    try:
        get_host().add_commands(app)
    except Exception as exc:  # a plugin's command hook must not take the CLI down
        print(f"warning: a plugin failed to add its commands: {exc}", file=sys.stderr)
    return app


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `contrastkit` console script."""
    from contrastkit.core import allocator

    allocator.request()  # reuse large blocks across training steps (CONTRASTKIT_MALLOC_TUNE=0: glibc's defaults)
    cli = _compose()
    try:
        cli(args=argv, standalone_mode=True)
    except ContrastkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted; the last finished epoch's checkpoint is kept (resume with --resume).", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
