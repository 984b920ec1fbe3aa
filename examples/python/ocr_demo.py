#!/usr/bin/env python3
"""cloudauth from Python: get a token, submit an image for OCR, poll the task, print the text.

The same flow as examples/c/demo.c, against the Aspose-compatible API at $STANDIN_URL (the local
stand-in, tests/standin/server.py). Prints the token's length, never the token.

    STANDIN_URL=http://127.0.0.1:8080 python3 examples/python/ocr_demo.py
"""

from __future__ import annotations

import base64
import os
import sys
import time

import cloudauth

# A 1x1 transparent PNG: the stand-in only counts its bytes.
IMAGE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
MAX_POLLS = 50


def main() -> int:
    base = os.environ.get("STANDIN_URL")
    if not base:
        print("ocr_demo: set STANDIN_URL (e.g. run it under tests/standin/with_server.sh)", file=sys.stderr)
        return 2
    base = base.rstrip("/")
    try:
        with cloudauth.Session(
            client_id=os.environ.get("CLOUDAUTH_CLIENT_ID", "demo-client"),
            client_secret=os.environ.get("CLOUDAUTH_CLIENT_SECRET", "demo-secret"),
            token_url=base + "/connect/token",
            base_url=base,
            timeout_ms=10000,
        ) as session:
            print(f"cloudauth {cloudauth.library_version()}: token of {len(session.token())} characters")

            submitted = session.post(
                "/v5.0/ocr/RecognizeImage",
                json={
                    "image": base64.b64encode(IMAGE).decode("ascii"),
                    "settings": {"language": "English"},
                },
            )
            submitted.raise_for_status()
            task_id = submitted.text.strip()
            print(f"submitted {len(IMAGE)} image bytes: task {task_id}")

            for attempt in range(1, MAX_POLLS + 1):
                r = session.get(f"/v5.0/ocr/RecognizeImage?id={task_id}")
                r.raise_for_status()
                task = r.json()
                status = task.get("taskStatus")
                print(f"poll {attempt}: {status}")
                if status == "Completed":
                    for result in task.get("results") or []:
                        text = base64.b64decode(result["data"]).decode("utf-8")
                        print(f"recognized text: {text}")
                    return 0
                if status not in ("Pending", "Processing"):
                    print(f"ocr_demo: task ended as {status}: {task.get('error')}", file=sys.stderr)
                    return 1
                time.sleep(0.1)
            print(f"ocr_demo: task not completed after {MAX_POLLS} polls", file=sys.stderr)
            return 1
    except (cloudauth.Error, cloudauth.HTTPError) as e:
        print(f"ocr_demo: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
