"""The `sciserve` command line (typer): one module per command group, assembled here.

The commands of the service (`serve`, `gateway`, `worker`, `tool-server`), the HTTP
client (`solve`) and the evaluation (`eval`) sit at the top; the other groups are
sub-commands (`sciserve model prepare`, `sciserve keys create`, ...).
"""

from __future__ import annotations

import typer

from entrypoints.cli import data, keys, model, serve, solve, traces, train
from entrypoints.cli.calibrate import calibrate
from entrypoints.cli.evaluate import evaluate

cli = typer.Typer(help="sciserve: serve and solve scientific problems.", no_args_is_help=True)

cli.command()(serve.serve)
cli.command()(serve.gateway)
cli.command()(serve.worker)
cli.command("tool-server")(serve.tool_server)
cli.command()(solve.solve)
cli.command("eval")(evaluate)
cli.command()(calibrate)

cli.add_typer(model.app, name="model")
cli.add_typer(keys.app, name="keys")
# The training loop: traces → datasets → adapters.
cli.add_typer(traces.app, name="traces")
cli.add_typer(data.app, name="data")
cli.add_typer(train.app, name="train")


def main() -> None:
    cli(prog_name="sciserve")
