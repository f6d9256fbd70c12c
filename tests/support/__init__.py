"""What the tests share, apart from pytest's fixtures (those stay in `tests/conftest.py`).

Tests import from here, never from `conftest` or from another test file:

- `server`: the test server's settings and `Api`, the client the `api` fixtures give.
- `receiver`: `Receiver`, the scripted HTTP endpoint of the `receiver` fixture.
- `waiting`: `eventually`, polling a condition with a deadline.
- `databases`: fresh SQLite and PostgreSQL databases.
- `envelope`, `signatures`, `targets`: the API's answer envelope, the platform's signing test
  vector and our signature checks, and the URLs the SSRF guard judges.
- `media`, `live`, `tokens`: publish tokens, synthetic streams pushed over HTTP, clips, real
  publishers (ffmpeg, GStreamer) and what they leave in the database.
- `mediakit`, `whipkit`, `browser`, `official_clients`: media files, a WHIP publisher, Chromium,
  and the platform's official clients.
- `crashkit`, `pgcluster`, `buckets`, `footprint`: servers as subprocesses (crash, scale-out),
  a private PostgreSQL, S3 buckets (moto) and the receiver's import footprint.

The modules import each other relatively, so `bench/` can import them as `tests.support.*`.
"""

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent  # the repository
GOLDEN = TESTS / "golden"  # the platform's own hook examples
