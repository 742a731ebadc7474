"""The error type for mistakes a user can fix: the CLI prints it as one line, the GUI as a dialog."""

import errno


class UserError(Exception):
    """Something the user can fix; the message names the problem and what to do."""


USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)


def os_reason(error: OSError) -> str:
    """An OSError's cause in a few plain words."""
    if error.errno == errno.EROFS:
        return "the file system is read-only"
    if isinstance(error, PermissionError) or error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return (error.strerror or str(error)).lower()
