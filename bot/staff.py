"""Console users: passwords (scrypt), sign-in with lock-out after repeated failures, and what each role
may see — a lawyer the regions they serve (and the tickets they hold), a union admin its region and
everything below, an admin everything."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.roster import Tree, served_regions
from models.org import ROLES, StaffUser

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 10
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class LoginRefused(Exception):
    """Sign-in refused; `locked` says whether the account is (now) locked."""

    def __init__(self, message: str, *, locked: bool = False):
        super().__init__(message)
        self.locked = locked


def hash_password(password: str) -> str:
    """scrypt$<salt>$<hash>, both base64."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(stored: str, password: str) -> bool:
    """Whether `password` matches `stored` (constant-time comparison)."""
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    return hmac.compare_digest(actual, base64.b64decode(digest))


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))


def validate_password(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    lawyer_id: int | None = None,
    region_id: int | None = None,
    openid: str | None = None,
) -> StaffUser:
    """A new console user; a lawyer needs `lawyer_id`, a union admin `region_id`."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "lawyer" and lawyer_id is None:
        raise ValueError("a lawyer's account needs the lawyer it belongs to")
    if role == "union_admin" and region_id is None:
        raise ValueError("a union admin's account needs its region")
    validate_password(password)
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise ValueError(f"the user name {username!r} is taken")
    user = StaffUser(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        lawyer_id=lawyer_id,
        region_id=region_id,
        openid=openid,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str, *, now: datetime) -> StaffUser:
    """The user, or LoginRefused. After MAX_FAILURES wrong passwords in a row the account is locked for
    LOCKOUT; an unknown name costs the same hashing time as a known one."""
    user = session.scalars(select(StaffUser).where(StaffUser.username == username)).one_or_none()
    if user is None or not user.active:
        check_password(_dummy_hash(), password)  # as slow as a real check: names cannot be probed
        raise LoginRefused("用户名或密码不对")
    if user.locked_until is not None and user.locked_until > now:
        raise LoginRefused("连续输错次数太多，账号已暂时锁定，请15分钟后再试", locked=True)
    if not check_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until, user.failed_logins = now + LOCKOUT, 0
            raise LoginRefused("连续输错次数太多，账号已暂时锁定，请15分钟后再试", locked=True)
        raise LoginRefused("用户名或密码不对")
    user.failed_logins, user.locked_until = 0, None
    return user


def set_password(user: StaffUser, password: str) -> None:
    """Change the password; every token issued before stops working."""
    validate_password(password)
    user.password_hash = hash_password(password)
    user.token_version += 1


def visible_regions(session: Session, user: StaffUser, tree: Tree | None = None) -> set[int] | None:
    """The regions whose tickets `user` may see; None means all (admin)."""
    if user.role == "admin":
        return None
    tree = tree or Tree(session)
    if user.role == "union_admin":
        return tree.subtree(user.region_id) if user.region_id is not None else set()
    return served_regions(session, user.lawyer_id, tree) if user.lawyer_id is not None else set()
