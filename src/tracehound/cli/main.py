"""Entry point of the `tracehound` command.

Subcommands live in their own modules and are imported only when used, so that `tracehound rules
check` does not pay for FastAPI and `tracehound scan` does not need the server's dependencies.
"""

from __future__ import annotations

import importlib
import sys

import click

from tracehound import __version__

# exit codes shared by every subcommand (documented in the README)
EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_INCONCLUSIVE = 2
EXIT_USAGE = 3

# command name -> "module:attribute"
_COMMANDS: dict[str, str] = {
    "rules": "tracehound.cli.rules_cmd:rules",
    "trace": "tracehound.cli.trace_cmd:trace",
    "doctor": "tracehound.cli.doctor_cmd:doctor",
    "scan": "tracehound.cli.scan_cmd:scan",
    "eval": "tracehound.cli.eval_cmd:eval_cmd",
    "serve": "tracehound.cli.server_cmd:serve",
    "worker": "tracehound.cli.server_cmd:worker",
    "users": "tracehound.cli.server_cmd:users",
    "submit": "tracehound.cli.submit_cmd:submit",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in _COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # command not built yet
                return None
            raise
        return getattr(module, attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracehound")
def cli() -> None:
    """Install and import dependencies in a sandbox, watch their syscalls, judge them with Falco rules."""


def main(argv: list[str] | None = None) -> int:
    try:
        # with standalone_mode=False click returns ctx.exit(n)'s code instead of raising
        rc = cli.main(args=argv, prog_name="tracehound", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_USAGE
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    return rc if isinstance(rc, int) else EXIT_CLEAN


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
