"""Files and attachments: a message's ``attachments`` built from the uploaded ``files[n]`` parts.

A mixin of ``DiscordWorld`` (``world/core.py``), used wherever a message is sent or edited.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from tests.discord_emulator.state import Attachment, UploadedFile


class AttachmentOps:
    """Uploaded files made into (or kept as) a message's attachments."""

    def build_attachments(
        self,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        keep: list[Attachment] | None = None,
    ) -> list[Attachment]:
        """Map ``attachments`` entries to uploaded ``files[n]`` parts (and kept old ones)."""
        by_field = {f.field_name: f for f in files}
        result: list[Attachment] = []
        kept_ids: set[int] = set()
        described = body.get("attachments")
        used: set[str] = set()
        if isinstance(described, list):
            for entry in described:
                entry_id = str(entry.get("id"))
                upload = by_field.get(f"files[{entry_id}]")
                if upload is not None:
                    used.add(upload.field_name)
                    result.append(self._new_attachment(upload, entry))
                elif keep is not None and entry_id.isdigit():
                    kept_ids.add(int(entry_id))
        for upload in files:
            if upload.field_name not in used:
                result.append(self._new_attachment(upload, {}))
        if keep is not None:
            if isinstance(described, list):
                result = [a for a in keep if a.id in kept_ids] + result
            else:
                result = list(keep) + result
        return result

    def _new_attachment(self, upload: UploadedFile, entry: dict[str, Any]) -> Attachment:
        filename = entry.get("filename") or upload.filename
        content_type = upload.content_type
        if not content_type or content_type == "application/octet-stream":
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return Attachment(
            self.store.next_id(),
            filename,
            upload.data,
            content_type,
            description=entry.get("description"),
        )
