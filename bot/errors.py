"""The one base of the errors a user can cause or fix (a bad file, setting, argument or install):
bot/cli.py catches it once and prints str() as one line, `rollcall: error: <file or key>: <problem>`."""


class RollcallError(Exception):
    """An expected error; str() is the one line shown, naming the file or key and the problem."""


class StoreError(RollcallError, RuntimeError):
    """A store problem the user can cause or fix; str() is one line naming the path or the key. Here
    rather than in store.py because the store's helpers (home_files, privacy) raise it too."""
