"""Typed access to users where the framework hands out something looser: the signed-in user of a
request (DRF types it `User | AnonymousUser`) and a user's chain address (`User.eth_address` is
nullable until the user has a key).
"""

from __future__ import annotations

from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from access.models import User
from healthhash.errors import Forbidden


def signed_in_user(request: Request) -> User:
    """`request.user` as the project's User; NotAuthenticated for an anonymous one.

    Every API view requires authentication (DEFAULT_PERMISSION_CLASSES), so the error is not reached
    there; it makes the narrowing a checked one rather than a cast.
    """
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def address_of(user: User) -> str:
    """`user`'s checksummed Ethereum address (stored checksummed); Forbidden (`no_address`) for a user
    who has no key yet."""
    if not user.eth_address:
        raise Forbidden(f"{user.username} has no Ethereum address yet", code="no_address")
    return user.eth_address
