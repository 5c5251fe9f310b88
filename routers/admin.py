"""Runtime adapter administration, behind the admin key."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from app.deps import AdapterAdmin, bump_cache_generation, get_adapter_admin, require_admin
from contract.schemas import AdapterInfo, AdapterLoad, AdapterName, ErrorBody

router = APIRouter(
    prefix="/admin/adapters",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)


@router.get("", response_model=list[AdapterInfo])
async def list_adapters(admin: AdapterAdmin = Depends(get_adapter_admin)) -> list[AdapterInfo]:
    """Each role's adapter; on a gateway over a pool, every live worker's state too."""
    return await admin.list_adapters()


@router.post("", response_model=AdapterInfo, responses={422: {"model": ErrorBody}})
async def load_adapter(
    request: Request, body: AdapterLoad, admin: AdapterAdmin = Depends(get_adapter_admin)
) -> AdapterInfo:
    """Validate and load an adapter for a role, replacing the role's current one (or,
    with `name`, beside it under that name, for requests that choose it). On a
    gateway over a pool: on every worker, now and on any worker that starts later; the
    answer comes once every live worker has applied it (or after 30 s) and carries
    each worker's state, with the reason where a load failed. Cached answers made
    before no longer stand."""
    info = await admin.load_adapter(body)
    await bump_cache_generation(request)
    return info


@router.delete("/{name}", status_code=204, responses={422: {"model": ErrorBody}})
async def unload_adapter(
    request: Request, name: AdapterName, admin: AdapterAdmin = Depends(get_adapter_admin)
) -> None:
    """Unload an adapter by name: a role's own (named after the role, which then falls
    back to the base model) or a named one. Cached answers made before no longer
    stand."""
    await admin.unload_adapter(name)
    await bump_cache_generation(request)
