"""Runtime adapter administration, behind the admin key."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends

from app.deps import AdapterAdmin, get_adapter_admin, require_admin
from contract.schemas import AdapterInfo, AdapterLoad, ErrorBody

router = APIRouter(
    prefix="/admin/adapters",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)


@router.get("", response_model=list[AdapterInfo])
async def list_adapters(admin: AdapterAdmin = Depends(get_adapter_admin)) -> list[AdapterInfo]:
    return admin.list_adapters()


@router.post("", response_model=AdapterInfo, responses={422: {"model": ErrorBody}})
async def load_adapter(
    body: AdapterLoad, admin: AdapterAdmin = Depends(get_adapter_admin)
) -> AdapterInfo:
    """Validate and load an adapter for a role, replacing the role's current one."""
    return await admin.load_adapter(body)


@router.delete("/{role}", status_code=204, responses={422: {"model": ErrorBody}})
async def unload_adapter(
    role: Literal["policy", "asker", "truster"], admin: AdapterAdmin = Depends(get_adapter_admin)
) -> None:
    """Unload a role's adapter; the role falls back to the base model."""
    await admin.unload_adapter(role)
