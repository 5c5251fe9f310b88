"""`sciserve keys`: create and revoke API keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from contract.settings import Settings

app = typer.Typer(
    help="API keys, stored hashed in Redis or a SQLite file (SCISERVE_KEY_STORE).",
    no_args_is_help=True,
)


def _key_settings() -> Settings:
    settings = Settings()
    if settings.redis_url is None and settings.key_store is None:
        typer.echo(
            "Set SCISERVE_REDIS_URL (keys in Redis) or SCISERVE_KEY_STORE (a SQLite file, "
            "for one box without Redis) first.",
            err=True,
        )
        raise typer.Exit(2)
    return settings


async def _with_key_store(settings: Settings, action: Any) -> Any:
    """Keys live in Redis when it is configured, else in the SQLite key store."""
    from app.auth import RedisKeyStore, SqliteKeyStore
    from jobqueue.redis_streams import connect

    if settings.redis_url is None:
        assert settings.key_store is not None
        return await action(SqliteKeyStore(settings.key_store))
    client = connect(str(settings.redis_url))
    try:
        return await action(RedisKeyStore(client, settings.redis_prefix))
    finally:
        await client.aclose()


@app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who the key is for.")],
    scope: Annotated[list[str], typer.Option(help="solve, reveal_thoughts or admin; repeat.")],
) -> None:
    """Create an API key and print it once; only its hash is stored."""
    import asyncio

    settings = _key_settings()
    try:
        typer.echo(asyncio.run(_with_key_store(settings, lambda s: s.create(name, scope))))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke every key of that name."""
    import asyncio

    settings = _key_settings()
    revoked = asyncio.run(_with_key_store(settings, lambda s: s.revoke(name)))
    typer.echo(f"revoked {revoked} key(s)")
