"""The CLI reference (docs/cli.md), generated from the commands' own --help.

Regenerate with ``python -m archiver.cli.reference > docs/cli.md`` (or
``pytest --update-golden``); a test fails when the file is stale.
"""

from __future__ import annotations

import click

from archiver.cli import cli


def reference() -> str:
    out = [
        "# claimwatch command reference",
        "",
        "Generated from `--help` by `python -m archiver.cli.reference`; do not edit by hand.",
        "",
    ]

    def visit(command: click.Command, path: list[str], parent: click.Context | None) -> None:
        ctx = click.Context(
            command, info_name=path[-1], parent=parent, terminal_width=100, max_content_width=100
        )
        out.extend(
            [f"## {' '.join(path)}", "", "```text", command.get_help(ctx).rstrip(), "```", ""]
        )
        if isinstance(command, click.Group):
            for name in sorted(command.list_commands(ctx)):
                sub = command.get_command(ctx, name)
                if sub is not None:
                    visit(sub, [*path, name], ctx)

    visit(cli, ["claimwatch"], None)
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    print(reference(), end="")
