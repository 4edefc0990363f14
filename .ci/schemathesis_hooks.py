"""Schemathesis hooks for `.ci/schemathesis.sh`: keep the run authenticated.

Schemathesis learns key ids from the responses and so, sooner or later, rotates, disables,
deletes or narrows the very key it authenticates with (the lock-out guard only protects the
last key that can manage keys, and the run creates many). Every request after that would be
a 401 or 403 and the rest of the run would test nothing but authentication.

This provider hands schemathesis the key that the script bootstrapped. When a request that
carried it is answered 401 or 403, schemathesis drops the cached key, asks `get` for a new one
and replays that request once (its reactive re-authentication; the summary says "Re-authenticated
N times"): `get` then runs the binary's `bootstrap` subcommand on the server's database, which
prints a new key holding every scope. A request that schemathesis sends without credentials on
purpose (its missing or invalid auth cases) is not replayed, so those 401s are still checked.

Environment (set by the script): AAK_BINARY, DATABASE_URL, AAK_FIRST_KEY, AAK_MINT_LOG.
"""

import os
import subprocess
import threading

import schemathesis

_lock = threading.Lock()
_first_key = os.environ.get("AAK_FIRST_KEY", "")
_minted = 0


def _mint() -> str:
    global _minted
    _minted += 1
    result = subprocess.run(
        [
            os.environ["AAK_BINARY"],
            "bootstrap",
            "--owner-name",
            "schemathesis",
            "--key-name",
            f"schemathesis re-auth {_minted}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bootstrap failed ({result.returncode}): {result.stderr.strip()}")
    with open(os.environ["AAK_MINT_LOG"], "a", encoding="utf-8") as log:
        log.write(f"minted key {_minted}\n")
    return result.stdout.strip()


# 401 (rotated, disabled, deleted, expired) and 403 (scopes narrowed): the key is no longer fit.
# No time-based refresh: a key is replaced only when the server says it has stopped working.
@schemathesis.auth(refresh_interval=10**9, retry_on=[401, 403])
class BootstrappedAdminKey:
    def get(self, case, context):
        global _first_key
        with _lock:
            if _first_key:
                key, _first_key = _first_key, ""
                return key
            return _mint()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
