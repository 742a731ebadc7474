"""The error type for mistakes a user can fix: the CLI prints it as one line, the GUI as a dialog."""


class UserError(Exception):
    """Something the user can fix; the message names the problem and what to do."""


USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)
