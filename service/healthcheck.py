"""``python -m service.healthcheck [PATH]``: exit 0 when the local server answers 200, else 1.

The container's HEALTHCHECK runs this, so the image needs no curl. It reads the port from the same
settings as the server and asks 127.0.0.1, whatever address the server binds.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from service.settings import get_settings


def check(path: str = "/healthz", timeout: float = 3.0) -> bool:
    url = f"http://127.0.0.1:{get_settings().port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):  # HTTPError (a 503) is a URLError too
        return False


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    sys.exit(0 if check(path) else 1)


if __name__ == "__main__":
    main()
