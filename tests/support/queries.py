"""The reads every request makes before its page's own, stated once for the query-count tests (issue 14).

A browser (session) request reads its session, then its user with the user's roles in one query
(``roles.first_with_roles``); an admin page also reads the user's permissions, its own and its groups', in
one query (``cmlims.api.authentication.RoleLoadingBackend``). A token request reads the token with its user and
roles in one query and no session.
"""

from django.conf import settings

CACHED_SESSIONS = "django.contrib.sessions.backends.cached_db"
USER_READS = 1  # the user with its roles
PERMISSION_READS = 1  # the user's and its groups' permissions (admin pages)
TOKEN_READS = 1  # the token with its user and roles (API by token)


def session_reads() -> int:
    """The session's reads: none when sessions are cached (REDIS_URL set: ``cached_db``; a session saved by a
    login or an earlier request is in the cache), else its row."""
    return 0 if settings.SESSION_ENGINE == CACHED_SESSIONS else 1


def session_request_reads() -> int:
    """Before an API view's own reads, for a session (browser) request: the session and the user with roles."""
    return session_reads() + USER_READS


def admin_request_reads() -> int:
    """Before an admin page's own reads: the session, the user with its roles, the user's permissions."""
    return session_reads() + USER_READS + PERMISSION_READS
