"""API tokens (only their SHA-256 is stored) and revoked access tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.errors import NotFound
from storage.models import ApiToken, RevokedAccessToken, User, utc_now
from storage.pagination import Page, paginate

TOKEN_PREFIX = "cw_"  # noqa: S105 (a public prefix, not a secret)
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(
    session: Session, *, user_id: int, name: str, expires_at: datetime | None
) -> tuple[ApiToken, str]:
    """A new token for the user, and its plaintext, which is never stored."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user_id, name=name, token_hash=hash_token(plaintext),
                     prefix=plaintext[:10], expires_at=expires_at)
    session.add(token)
    session.flush()
    return token, plaintext


def user_for_api_token(session: Session, *, plaintext: str) -> tuple[User, ApiToken] | None:
    """The account an unexpired API token belongs to (read only: see `token_needs_touch`)."""
    row = session.exec(
        select(ApiToken, User)
        .join(User, col(User.id) == col(ApiToken.user_id))
        .where(ApiToken.token_hash == hash_token(plaintext))
    ).first()
    if row is None:
        return None
    token, user = row
    now = utc_now()
    if not user.is_active or (token.expires_at is not None and token.expires_at <= now):
        return None
    return user, token


def token_needs_touch(token: ApiToken) -> bool:
    """Whether `last_used_at` is older than its resolution (about a minute)."""
    return token.last_used_at is None or utc_now() - token.last_used_at >= LAST_USED_RESOLUTION


def touch_api_token(session: Session, *, token_id: int) -> None:
    """Record that a token was used now."""
    session.execute(update(ApiToken).where(col(ApiToken.id) == token_id)
                    .values(last_used_at=utc_now()))


def list_api_tokens(
    session: Session, *, user_id: int | None, limit: int | None, cursor: str | None
) -> Page[tuple[ApiToken, User]]:
    """Tokens of one user (or of everyone when user_id is None), oldest first."""
    statement = select(ApiToken, User).join(User, col(User.id) == col(ApiToken.user_id))
    if user_id is not None:
        statement = statement.where(ApiToken.user_id == user_id)
    return paginate(session, statement, col(ApiToken.id), limit=limit,
                    cursor=cursor, key_of=lambda row: row[0].id)


def delete_api_token(session: Session, *, token_id: int, user_id: int | None) -> None:
    """Delete a token of the user (any token when user_id is None)."""
    token = session.get(ApiToken, token_id)
    if token is None or (user_id is not None and token.user_id != user_id):
        raise NotFound(f"no token {token_id}", code="token_not_found")
    session.delete(token)


def revoke_access_token(session: Session, *, jti: str, expires_at: datetime) -> None:
    """Refuse this access token from now on; forget revocations that have expired."""
    now = utc_now()
    session.execute(delete(RevokedAccessToken).where(col(RevokedAccessToken.expires_at) < now))
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(RevokedAccessToken)
                    .values(jti=jti, expires_at=expires_at)
                    .on_conflict_do_nothing(index_elements=["jti"]))


def is_access_token_revoked(session: Session, *, jti: str) -> bool:
    """Whether the access token with this jti was logged out."""
    return session.exec(
        select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == jti)
    ).first() is not None
