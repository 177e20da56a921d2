"""The ``dossier`` command: one umbrella over each package's click group.

Global options read the ``DOSSIER_*`` environment (explicit ``envvar=``),
build one frozen :class:`~dossier_runtime.settings.Settings` and hand it
down through the click context. Exit codes, the same for every command:
0 ok, 1 operational error (with a sentence saying what to do), 2 usage
error, 3 findings (violations, integrity failures, broken compatibility).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

import click

from dossier_runtime.errors import SettingsError
from dossier_runtime.lazygroup import LazyGroup
from dossier_runtime.settings import (
    DEFAULT_CLICKHOUSE_READ_TIMEOUT,
    DEFAULT_DATA_DIR,
    DEFAULT_PARTITIONS,
    DEFAULT_TOPIC,
    KafkaSecurity,
    Settings,
)


class SettingsRefused(click.ClickException):
    """Settings that contradict themselves: one sentence, exit code 2 (a usage error), nothing connected."""

    exit_code = 2


_HELP_ONLY = "dossier.help_only"


#: The subcommands, each as ``module:attribute``: imported when it runs (or a listing needs it), so a command
#: loads its own libraries only, not every other command's (Kafka, NumPy, chDB): 0.3-0.6 s less a start.
SUBCOMMANDS: Final = {
    "schema": "schemas.cli:schema_group",
    "calendar": "schemas.cli_calendar:calendar_group",
    "produce": "producers.cli:produce_group",
    "consume": "consumers.cli:consume_group",
    "inspect": "inspection.cli:inspect_group",
    "demo": "dossier_audit.demo:demo_cmd",
    "keys": "dossier_audit.keys:keys_group",
    "verify-proof": "dossier_audit.verifyproof:verify_proof_cmd",
}


class _Umbrella(LazyGroup):
    """The ``dossier`` group: subcommands imported when they run (:data:`SUBCOMMANDS`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        ctx.meta[_HELP_ONLY] = any(arg in ("-h", "--help") for arg in rest)
        return rest


def _version() -> str:
    try:
        return version("dossier-audit")
    except PackageNotFoundError:
        return "unknown"


@click.group(
    cls=_Umbrella,
    lazy_subcommands=SUBCOMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(_version(), prog_name="dossier")
@click.option(
    "--data-dir",
    envvar="DOSSIER_DATA_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Directory of the embedded store and broker state [env DOSSIER_DATA_DIR].",
)
@click.option(
    "--kafka-bootstrap",
    envvar="DOSSIER_KAFKA_BOOTSTRAP",
    help="Kafka bootstrap servers; unset runs the embedded broker [env DOSSIER_KAFKA_BOOTSTRAP].",
)
@click.option("--topic", envvar="DOSSIER_TOPIC", default=DEFAULT_TOPIC, show_default=True, help="[env DOSSIER_TOPIC]")
@click.option(
    "--partitions",
    envvar="DOSSIER_PARTITIONS",
    type=click.IntRange(1, 1024),
    default=DEFAULT_PARTITIONS,
    show_default=True,
    help="Partitions the topic is created with [env DOSSIER_PARTITIONS].",
)
@click.option("--clickhouse-url", envvar="DOSSIER_CLICKHOUSE_URL", hidden=True)
@click.option("--clickhouse-user", envvar="DOSSIER_CLICKHOUSE_USER", hidden=True)
@click.option("--clickhouse-password", envvar="DOSSIER_CLICKHOUSE_PASSWORD", hidden=True)
@click.option(
    "--clickhouse-read-timeout",
    envvar="DOSSIER_CLICKHOUSE_READ_TIMEOUT",
    type=click.FloatRange(min=1, max=86_400),
    default=DEFAULT_CLICKHOUSE_READ_TIMEOUT,
    hidden=True,
)
@click.option("--clickhouse-cluster", envvar="DOSSIER_CLICKHOUSE_CLUSTER", hidden=True)
@click.option("--kafka-security-protocol", envvar="DOSSIER_KAFKA_SECURITY_PROTOCOL", default="PLAINTEXT", hidden=True)
@click.option("--kafka-sasl-mechanism", envvar="DOSSIER_KAFKA_SASL_MECHANISM", hidden=True)
@click.option("--kafka-sasl-username", envvar="DOSSIER_KAFKA_SASL_USERNAME", hidden=True)
@click.option("--kafka-sasl-password", envvar="DOSSIER_KAFKA_SASL_PASSWORD", hidden=True)
@click.option("--kafka-ssl-cafile", envvar="DOSSIER_KAFKA_SSL_CAFILE", hidden=True)
@click.option("--pseudonym-key", envvar="DOSSIER_PSEUDONYM_KEY", hidden=True)
@click.option("--working-hours", envvar="DOSSIER_WORKING_HOURS", hidden=True)
@click.option("--inspector", envvar="DOSSIER_INSPECTOR", hidden=True)
@click.pass_context
def main(
    ctx: click.Context,
    data_dir: Path,
    kafka_bootstrap: str | None,
    topic: str,
    partitions: int,
    clickhouse_url: str | None,
    clickhouse_user: str | None,
    clickhouse_password: str | None,
    clickhouse_read_timeout: float,
    clickhouse_cluster: str | None,
    kafka_security_protocol: str,
    kafka_sasl_mechanism: str | None,
    kafka_sasl_username: str | None,
    kafka_sasl_password: str | None,
    kafka_ssl_cafile: str | None,
    pseudonym_key: str | None,
    working_hours: str | None,
    inspector: str | None,
) -> None:
    """dossier-audit: event-sourced audit and inspection of administrative-procedure dossiers.

    Secrets and server addresses come from the environment (DOSSIER_CLICKHOUSE_URL,
    DOSSIER_PSEUDONYM_KEY, DOSSIER_KAFKA_SASL_*); see the README's configuration table.

    \b
    Examples:
      dossier demo
      dossier schema check
      dossier calendar due 2024-02-07T16:00+07:00 --days 3
    """
    if ctx.meta.get(_HELP_ONLY):
        return  # a subcommand's help needs no settings, so a refused setting does not hide it
    try:  # every subcommand runs after this: a refused setting stops them all before any connection
        ctx.obj = Settings(
            data_dir=data_dir,
            kafka_bootstrap=kafka_bootstrap or None,
            kafka_security=KafkaSecurity(
                protocol=kafka_security_protocol,
                sasl_mechanism=kafka_sasl_mechanism,
                sasl_username=kafka_sasl_username,
                sasl_password=kafka_sasl_password,
                ssl_cafile=kafka_ssl_cafile,
            ),
            topic=topic,
            partitions=partitions,
            clickhouse_url=clickhouse_url or None,
            clickhouse_user=clickhouse_user or None,
            clickhouse_password=clickhouse_password or None,
            clickhouse_read_timeout=clickhouse_read_timeout,
            clickhouse_cluster=clickhouse_cluster or None,
            pseudonym_key=pseudonym_key.encode() if pseudonym_key else None,
            working_hours=working_hours,
            inspector=inspector or None,
        )
    except SettingsError as exc:
        raise SettingsRefused(str(exc)) from None
