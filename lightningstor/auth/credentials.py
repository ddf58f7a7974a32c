"""Access keys and their secrets, sealed at rest.

Secrets are stored as AES-GCM ciphertext under the node's 256-bit master key, with the access key
id as associated data (a sealed secret moved to another key id does not open). A raw read of the
metadata files never shows a secret. The master key lives in a 0600 file outside the keyspace.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lightningstor.auth.access import Caller, check_grants, key_caller
from lightningstor.errors import (
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    LastAdminKey,
    OperationAborted,
)
from lightningstor.meta.keyspace import (
    CREDENTIAL_PREFIX,
    MASTER_CHECK_KEY,
    credential_key,
    prefix_end,
)
from lightningstor.meta.kv import OrderedKV, scan_all
from lightningstor.meta.records import CredentialRecord, decode_credential, encode_credential
from lightningstor.meta.unit import Unit, transact
from lightningstor.model import Owner, key_owner
from lightningstor.offload import Offloader

T = TypeVar("T")

MASTER_KEY_BYTES = 32
NONCE_BYTES = 12
# More opened credentials than this are never kept (the cache starts over).
_CACHED_CREDENTIALS = 4096
_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
# What the check-value seals (as its own associated data, apart from every key id's).
_CHECK_VALUE = b"lightningstor master key check"


@dataclass(frozen=True, slots=True, kw_only=True)
class Credential:
    access_key_id: str
    secret_access_key: str
    name: str
    admin: bool
    active: bool
    grants: Mapping[str, str] = field(default_factory=dict)
    created_ns: int = 0
    canonical_id: str = ""  # the canonical user id buckets, objects and grants name

    @property
    def owner(self) -> Owner:
        return key_owner(self.access_key_id, self.canonical_id, self.name)

    @property
    def caller(self) -> Caller:
        """The key as authorization knows it (auth/access.py)."""
        return key_caller(
            access_key_id=self.access_key_id,
            canonical_id=self.canonical_id,
            name=self.name,
            admin=self.admin,
            grants=self.grants,
        )

    def __repr__(self) -> str:  # never let a secret reach a log through repr()
        return f"Credential(access_key_id={self.access_key_id!r}, name={self.name!r})"


def load_or_create_master_key(path: Path) -> bytes:
    """Read the master key, creating it (mode 0600) on first start."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(MASTER_KEY_BYTES)
        write_private(path, key)
    if len(key) != MASTER_KEY_BYTES:
        raise InternalError(f"master key {path} must hold exactly {MASTER_KEY_BYTES} bytes")
    return key


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only, atomically and durably: secrets sealed
    with a key are useless without it, so its name must survive a crash too."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # also when an older file of that name was more open
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    replace_durably(tmp, path)


def replace_durably(source: Path, target: Path) -> None:
    """Rename ``source`` over ``target`` and make the rename itself durable."""
    os.replace(source, target)
    directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def new_access_key_id() -> str:
    return "LS" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(18))


def new_secret_access_key() -> str:
    return secrets.token_urlsafe(30)


class CredentialStore:
    def __init__(self, *, kv: OrderedKV, offloader: Offloader, master_key: bytes) -> None:
        self._kv = kv
        self._io = offloader
        self._aead = AESGCM(master_key)
        # Opened credentials by key id: every signed request looks one up, and a pool hop plus
        # an AES-GCM open per request is most of what a small GET costs. This store is the only
        # writer of credential records while the daemon runs (LevelDB admits one process), so
        # each change drops the entry and bumps ``_changes``; a lookup that raced a change
        # does not cache what it read.
        self._cache: dict[str, Credential] = {}
        self._changes = 0

    def _seal(self, access_key_id: str, secret: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), access_key_id.encode())
        return base64.b64encode(nonce + sealed).decode()

    def _open(self, record: CredentialRecord) -> str:
        raw = base64.b64decode(record.sealed_secret)
        plain = self._aead.decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], record.access_key_id.encode()
        )
        return plain.decode()

    # --- the master key --------------------------------------------------------------------
    def opens_store(self) -> bool:
        """Whether the master key is the one this store's secrets are sealed with (blocking;
        at start, before serving). The store's sealed check-value says; a store older than it
        (or a new one) is tested on its first credential, and gains the check-value when the
        key opens what is there, so the next start is a single AES-GCM open."""
        check = self._kv.get(MASTER_CHECK_KEY)
        if check is not None:
            return self._opens(check)
        first = self._kv.scan(CREDENTIAL_PREFIX, prefix_end(CREDENTIAL_PREFIX), limit=1)
        if first:
            key_id = first[0][0][len(CREDENTIAL_PREFIX) :].decode()
            try:
                self._open(decode_credential(key_id, first[0][1]))
            except InvalidTag:
                return False
        unit = Unit(self._kv, self._io)
        unit.expect(MASTER_CHECK_KEY, None)
        unit.put(MASTER_CHECK_KEY, self._check_value())
        unit.commit_now()  # lost to another writer: theirs was made the same way
        return True

    def _check_value(self) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, _CHECK_VALUE, _CHECK_VALUE)

    def _opens(self, check: bytes) -> bool:
        try:
            return (
                self._aead.decrypt(check[:NONCE_BYTES], check[NONCE_BYTES:], _CHECK_VALUE)
                == _CHECK_VALUE
            )
        except InvalidTag:
            return False

    def reseal(self, new_master_key: bytes) -> int:
        """Seal every secret, and the check-value, with ``new_master_key`` instead, in one
        metadata commit (blocking; on a stopped store: ``admin rotate-master-key``). Raises
        InvalidTag when the current key does not open them. Returns how many keys moved."""
        new = CredentialStore(kv=self._kv, offloader=self._io, master_key=new_master_key)
        rows = list(scan_all(self._kv, CREDENTIAL_PREFIX, prefix_end(CREDENTIAL_PREFIX)))
        unit = Unit(self._kv, self._io)
        for raw_key, raw in rows:
            record = decode_credential(raw_key[len(CREDENTIAL_PREFIX) :].decode(), raw)
            sealed = new._seal(record.access_key_id, self._open(record))
            unit.expect(raw_key, raw)
            unit.put(raw_key, encode_credential(dataclasses.replace(record, sealed_secret=sealed)))
        unit.put(MASTER_CHECK_KEY, new._check_value())
        if not unit.commit_now():
            raise OperationAborted("The credentials changed while they were re-sealed.")
        return len(rows)

    async def create(
        self,
        *,
        access_key_id: str,
        secret_access_key: str,
        name: str,
        admin: bool,
        grants: Mapping[str, str] | None = None,
        canonical_id: str = "",
    ) -> Credential:
        """A new key; ``canonical_id`` names its owner identity (derived from the key id when
        not given). Raises InvalidArgument for a malformed or taken id."""
        if not (16 <= len(access_key_id) <= 128 and access_key_id.isalnum()):
            raise InvalidArgument("Access key ids are 16-128 letters and digits.")
        if len(secret_access_key) < 16:
            raise InvalidArgument("Secret access keys are at least 16 characters.")
        record = CredentialRecord(
            access_key_id=access_key_id,
            sealed_secret=self._seal(access_key_id, secret_access_key),
            name=name,
            created_ns=time.time_ns(),
            admin=admin,
            grants=check_grants(grants or {}),
            canonical_id=_checked_canonical_id(canonical_id),
        )
        key = credential_key(access_key_id)

        async def attempt(unit: Unit) -> None:
            if await unit.read(key) is not None:
                raise InvalidArgument("That access key id exists already.")
            if canonical_id:
                await self._expect_canonical_id_free(unit, record.owner_id)
            unit.put(key, encode_credential(record))

        await self._transact(attempt)
        return self._credential(record)

    async def lookup(self, access_key_id: str) -> Credential | None:
        """The credential with its secret opened, or ``None`` if the key id is unknown.

        Disabling a key or changing its grants takes effect at once: changes go through this
        store, which forgets what it cached.
        """
        cached = self._cache.get(access_key_id)
        if cached is not None:
            return cached
        changes = self._changes
        raw = await self._io.run(self._kv.get, credential_key(access_key_id))
        if raw is None:
            return None
        credential = self._credential(decode_credential(access_key_id, raw))
        if changes == self._changes:
            if len(self._cache) >= _CACHED_CREDENTIALS:
                self._cache.clear()
            self._cache[access_key_id] = credential
        return credential

    async def owners(self) -> list[tuple[str, Owner]]:
        """Every key's id and the canonical user it is, without opening a secret (grants and
        policies name users; their secrets are not needed to find them)."""
        records = [decode_credential(k, v) for k, v in await self._records()]
        return [(r.access_key_id, Owner(r.owner_id, r.name)) for r in records]

    async def _expect_canonical_id_free(self, unit: Unit, canonical_id: str) -> None:
        for key_id, raw in await self._records():
            if decode_credential(key_id, raw).owner_id == canonical_id:
                raise InvalidArgument("That canonical id belongs to another key.")
            unit.expect(credential_key(key_id), raw)

    def _changed(self, access_key_id: str) -> None:
        self._changes += 1
        self._cache.pop(access_key_id, None)

    def _credential(self, record: CredentialRecord) -> Credential:
        return Credential(
            access_key_id=record.access_key_id,
            secret_access_key=self._open(record),
            name=record.name,
            admin=record.admin,
            active=record.status == "active",
            grants=dict(record.grants),
            created_ns=record.created_ns,
            canonical_id=record.owner_id,
        )

    async def any_exists(self) -> bool:
        """Whether any access key exists (a store's first start has none)."""
        rows = await self._io.run(
            self._kv.scan, CREDENTIAL_PREFIX, prefix_end(CREDENTIAL_PREFIX), limit=1
        )
        return bool(rows)

    async def list(self) -> list[Credential]:
        return [self._credential(decode_credential(k, v)) for k, v in await self._records()]

    async def _records(self) -> Sequence[tuple[str, bytes]]:
        """Every credential record, as (access key id, raw record)."""
        rows = await self._io.run(
            lambda: list(scan_all(self._kv, CREDENTIAL_PREFIX, prefix_end(CREDENTIAL_PREFIX)))
        )
        return [(k[len(CREDENTIAL_PREFIX) :].decode(), v) for k, v in rows]

    async def update(
        self,
        access_key_id: str,
        *,
        active: bool | None = None,
        grants: Mapping[str, str] | None = None,
    ) -> Credential:
        """Change a key's status or replace its grants (one compare-and-swap). Raises
        InvalidAccessKeyId for an unknown key, InvalidArgument for a bad grant level."""
        key = credential_key(access_key_id)
        changes: dict[str, object] = {}
        if active is not None:
            changes["status"] = "active" if active else "disabled"
        if grants is not None:
            changes["grants"] = check_grants(grants)

        async def attempt(unit: Unit) -> CredentialRecord:
            raw = await unit.read(key)
            if raw is None:
                raise InvalidAccessKeyId(resource=access_key_id)
            record = decode_credential(access_key_id, raw)
            updated = dataclasses.replace(record, **changes)  # type: ignore[arg-type]
            unit.put(key, encode_credential(updated))
            if _active_admin(record) and not _active_admin(updated):
                await self._keep_an_admin(unit, access_key_id)
            return updated

        try:
            return self._credential(await self._transact(attempt))
        finally:
            self._changed(access_key_id)

    async def delete(self, access_key_id: str) -> None:
        """Remove a key for good. Raises InvalidAccessKeyId for an unknown key."""
        key = credential_key(access_key_id)

        async def attempt(unit: Unit) -> None:
            raw = await unit.read(key)
            if raw is None:
                raise InvalidAccessKeyId(resource=access_key_id)
            unit.delete(key)
            if _active_admin(decode_credential(access_key_id, raw)):
                await self._keep_an_admin(unit, access_key_id)

        try:
            await self._transact(attempt)
        finally:
            self._changed(access_key_id)

    async def _transact(self, attempt: Callable[[Unit], Awaitable[T]]) -> T:
        return await transact(
            lambda: Unit(self._kv, self._io),
            attempt,
            conflict=lambda: OperationAborted("The keys changed meanwhile; try again."),
        )

    async def _keep_an_admin(self, unit: Unit, leaving: str) -> None:
        """Make ``unit`` (which takes admin away from ``leaving``) expect another active admin
        key to stay as it is, so that two admins removing each other cannot both succeed.
        Raises LastAdminKey when there is none."""
        for key_id, value in await self._records():
            if key_id != leaving and _active_admin(decode_credential(key_id, value)):
                unit.expect(credential_key(key_id), value)
                return
        raise LastAdminKey(resource=leaving)


def _checked_canonical_id(canonical_id: str) -> str:
    if canonical_id and not (
        len(canonical_id) <= 128
        and canonical_id.isascii()
        and canonical_id.replace("-", "").isalnum()
    ):
        raise InvalidArgument("Canonical ids are up to 128 letters, digits and dashes.")
    return canonical_id


def _active_admin(record: CredentialRecord) -> bool:
    return record.admin and record.status == "active"
