"""The users grants and policies name, found among the keys: canonical user ids for ACL
grants, and for bucket policies the identifiers AWS principals carry (with no accounts here,
an ARN's account or user name names a key by its id, canonical id or name: see
``policy.principal_ids``)."""

from __future__ import annotations

from lightningstor.auth.credentials import CredentialStore
from lightningstor.auth.policy import principal_ids
from lightningstor.model import Owner


class Identities:
    def __init__(self, credentials: CredentialStore) -> None:
        self._credentials = credentials

    async def owner(self, canonical_id: str) -> Owner | None:
        """The canonical user ``canonical_id`` names, or None if no key has it."""
        found = (o for _, o in await self._credentials.owners() if o.id == canonical_id)
        return next(found, None)

    async def principal_exists(self, value: str) -> bool:
        """Whether a policy's AWS or CanonicalUser principal names a key."""
        names = principal_ids(value)
        return any(
            not names.isdisjoint({key_id, owner.id, owner.name})
            for key_id, owner in await self._credentials.owners()
        )
