"""The Files endpoints: upload (multipart, bounded; ``expires_after`` as in ``lifetimes``), list, retrieve, delete,
content; under /v1 for OpenAI and /openai/v1 for Azure OpenAI. An expired file is gone: 404, not listed."""

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from .checks import PURPOSES, page
from .config import EmulatorConfig
from .errors import APIError
from .lifetimes import form_expiry, lifetime, upload_expiry
from .store import Store, new_id
from .uploads import BadUpload, UploadTooLarge, receive_upload
from .vendors import OPENAI_API, Vendor


def files_router(store: Store, config: EmulatorConfig, vendor: Vendor = OPENAI_API) -> APIRouter:
    router = APIRouter(prefix=vendor.prefix, include_in_schema=vendor is OPENAI_API)

    @router.post("/files")
    async def upload_file(request: Request) -> dict:
        file_id = new_id("file")
        target = store.blob_path(file_id)
        try:
            fields, filename, size = await receive_upload(request, target, config.max_upload_bytes)
        except UploadTooLarge:
            target.unlink(missing_ok=True)
            raise APIError(
                413,
                f"File is too large: the maximum upload size is {config.max_upload_bytes:,} bytes.",
                "file",
                "file_too_large",
            ) from None
        except BadUpload as exc:
            target.unlink(missing_ok=True)
            raise APIError(400, str(exc), "file") from None
        except BaseException:  # anything else (a cancelled request, a bug): never leave an orphan blob
            target.unlink(missing_ok=True)
            raise
        purpose = fields.get("purpose")
        try:
            if purpose not in PURPOSES:
                raise APIError(400, f"Invalid value for 'purpose': {purpose!r}.", "purpose")
            expiry = upload_expiry(purpose, form_expiry(fields))
        except APIError:
            target.unlink(missing_ok=True)
            raise
        lives = lifetime(expiry, config.file_expiry_scale)
        stored = store.add_file(file_id, filename, purpose, size, lives, vendor=vendor.name)
        if config.upload_delay_seconds:
            await asyncio.sleep(config.upload_delay_seconds)  # stored already: a client may die before the answer
        return stored

    @router.get("/files")
    async def list_files(
        purpose: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
    ) -> dict:
        data, more = store.list_files(purpose, limit, after, order, vendor.name)
        return page(data, more)

    def _file_or_404(file_id: str) -> dict:
        found = store.get_file(file_id, vendor.name)
        if not found:
            raise APIError(404, f"No such File object: {file_id}", "id")
        return found

    @router.get("/files/{file_id}")
    async def get_file(file_id: str) -> dict:
        return _file_or_404(file_id)

    @router.delete("/files/{file_id}")
    async def delete_file(file_id: str) -> dict:
        _file_or_404(file_id)
        store.delete_file(file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    @router.get("/files/{file_id}/content")
    async def file_content(file_id: str) -> FileResponse:
        found = _file_or_404(file_id)
        return FileResponse(store.blob_path(file_id), media_type="application/octet-stream", filename=found["filename"])

    return router
