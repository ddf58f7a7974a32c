"""The users grants and policies name, found among the keys: canonical user ids for ACL
grants, and for bucket policies the identifiers AWS principals carry (see ``policy.py``: with
no accounts here, an ARN's account or user name names a key by its id, canonical id or name).
"""

from __future__ import annotations

from lightningstor.auth.credentials import Credential, CredentialStore
from lightningstor.model import Owner


class Identities:
    def __init__(self, credentials: CredentialStore) -> None:
        self._credentials = credentials

    async def owner(self, canonical_id: str) -> Owner | None:
        """The canonical user ``canonical_id`` names, or None if no key has it."""
        found = await self._credentials.by_canonical_id(canonical_id)
        return found.owner if found is not None else None

    async def principal_exists(self, value: str) -> bool:
        """Whether a policy's AWS or CanonicalUser principal names a key: a key id, a
        canonical id, or an ARN (arn:aws:iam::ACCOUNT:root or :user/NAME) whose account or
        user part is one of those or a key's name."""
        names = _identifiers(value)
        return any(names & _names_of(c) for c in await self._credentials.list())


def _identifiers(value: str) -> set[str]:
    if not value.startswith("arn:"):
        return {value}
    parts = value.split(":", 5)
    if len(parts) != 6:
        return set()
    account, resource = parts[4], parts[5]
    user = resource.removeprefix("user/") if resource.startswith("user/") else ""
    return {name for name in (account, user) if name}


def _names_of(credential: Credential) -> set[str]:
    return {credential.access_key_id, credential.owner.id, credential.name}
