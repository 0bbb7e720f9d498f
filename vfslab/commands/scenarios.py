"""`vfslab scenarios`: the built-in scenario library, one line each."""

from __future__ import annotations

import click


@click.command()
@click.option("--path", "show_path", is_flag=True, help="also print where each file lives")
def scenarios(show_path: bool) -> None:
    """List the built-in scenarios (copy a .toml file from the library to make your own)."""
    from vfslab.scenarios import SCENARIOS
    from vfslab.scenarios.library import library_files

    files = library_files()
    width = max(len(n) for n in [*SCENARIOS, *files])
    for name, (_, line) in SCENARIOS.items():
        if name in files:
            continue
        click.echo(f"{name:<{width}}  {line}")
    for name, (path, line) in files.items():
        extra = f"  [{path}]" if show_path else ""
        click.echo(f"{name:<{width}}  {line}{extra}")
