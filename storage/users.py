"""User accounts: creation with argon2id password hashes, lookup, password checks."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from storage.errors import Conflict, Invalid, NotFound
from storage.models import User

PLATFORM_ROLES = ("user", "admin", "overseer")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# A hash to verify against when the account does not exist, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash("commonwatt-no-such-account")


def normalise_email(email: str) -> str:
    """The canonical form of an email address: trimmed and lower-cased."""
    return email.strip().lower()


def create_user(session: Session, *, email: str, password: str, role: str = "user") -> User:
    """A new account; refuses a taken email, an unknown role or a short password."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        raise Invalid(f"{email!r} is not an email address", code="invalid_email")
    if role not in PLATFORM_ROLES:
        raise Invalid(f"role must be one of {', '.join(PLATFORM_ROLES)}", code="invalid_role")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
                      code="weak_password")
    if session.exec(select(User).where(User.email == email)).first() is not None:
        raise Conflict(f"an account for {email} exists already", code="user_exists")
    user = User(email=email, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, *, user_id: int) -> User:
    """The active account with this id."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound(f"no account {user_id}", code="user_not_found")
    return user


def login_account(session: Session, *, email: str) -> User | None:
    """The active account that may log in with this email, if any."""
    user = session.exec(select(User).where(User.email == normalise_email(email))).first()
    return user if user is not None and user.is_active else None


def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; without a hash, a dummy is checked so timing is alike.

    Deliberately slow (argon2id): call it outside any database transaction.
    """
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def rehash_if_needed(session: Session, *, user_id: int, password: str) -> None:
    """Store a fresh hash when the hashing parameters have grown since this one was made."""
    user = session.get(User, user_id)
    if user is not None and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.add(user)


def set_password(session: Session, *, email: str, password: str) -> User:
    """Give an existing account a new password."""
    user = session.exec(select(User).where(User.email == normalise_email(email))).first()
    if user is None:
        raise NotFound(f"no account {email}", code="user_not_found")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
                      code="weak_password")
    user.password_hash = _hasher.hash(password)
    session.add(user)
    return user
