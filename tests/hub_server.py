"""A small Hub-compatible HTTP server for push tests (huggingface_hub ships none).

It implements what `HfApi.create_repo` and `HfApi.upload_folder` call, with regular (non-LFS) uploads, and
stores the committed files in memory so a test can read back what was pushed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HubState:
    def __init__(self, token: str):
        self.token = token
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[str] = []


def validate_card_metadata(readme: str) -> list[str]:
    """The checks the Hub makes that matter to us: YAML front matter, and a well-formed `model-index`."""
    import yaml

    if not readme.startswith("---\n"):
        return ["README.md has no YAML front matter"]
    try:
        metadata = yaml.safe_load(readme.split("---\n", 2)[1])
    except yaml.YAMLError as error:
        return [f"invalid YAML: {error}"]
    if not isinstance(metadata, dict):
        return ["the front matter is not a mapping"]
    errors = []
    for entry in metadata.get("model-index", []):
        if not isinstance(entry.get("name"), str) or not isinstance(entry.get("results"), list):
            errors.append("model-index entries need a name and a results list")
            continue
        for result in entry["results"]:
            if "type" not in result.get("task", {}) or "name" not in result.get("dataset", {}):
                errors.append("each result needs task.type and dataset.name")
            for metric in result.get("metrics", []):
                if "type" not in metric or not isinstance(metric.get("value"), (int, float)):
                    errors.append(f"metric {metric} needs a type and a numeric value")
    return errors


def _handler(state: HubState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _reply(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self):
            state.requests.append(f"POST {self.path}")
            body = self._body()
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                self._reply(401, {"error": "Invalid credentials in Authorization header"})
                return
            path = self.path.split("?")[0]
            if path == "/api/validate-yaml":
                errors = validate_card_metadata(json.loads(body)["content"])
                self._reply(400 if errors else 200, {"errors": [{"message": e} for e in errors], "warnings": []})
                return
            if path == "/api/repos/create":
                request = json.loads(body)
                repo_id = (
                    f"{request['organization']}/{request['name']}" if request.get("organization") else request["name"]
                )
                state.repos.setdefault(repo_id, {})
                self._reply(200, {"url": f"http://{self.headers['Host']}/{repo_id}", "name": repo_id})
                return
            parts = path.split("/")  # /api/models/{ns}/{name}/{action}/{revision}
            if len(parts) == 7 and parts[1:3] == ["api", "models"]:
                repo_id, action = f"{parts[3]}/{parts[4]}", parts[5]
                if repo_id not in state.repos:
                    self._reply(404, {"error": f"Repository {repo_id} not found"})
                    return
                if action == "preupload":
                    files = json.loads(body)["files"]
                    self._reply(
                        200,
                        {
                            "files": [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                            ]
                        },
                    )
                    return
                if action == "commit":
                    for line in body.splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            value = item["value"]
                            state.repos[repo_id][value["path"]] = base64.b64decode(value["content"])
                    oid = hashlib.sha1(body).hexdigest()
                    host = self.headers["Host"]
                    self._reply(200, {"commitUrl": f"http://{host}/{repo_id}/commit/{oid}", "commitOid": oid})
                    return
            self._reply(404, {"error": f"not implemented: POST {path}"})

        def do_GET(self):
            state.requests.append(f"GET {self.path}")
            self._reply(404, {"error": f"not implemented: GET {self.path}"})

    return Handler


class LocalHub:
    """Context manager: `with LocalHub(token) as hub:` serves on 127.0.0.1; `hub.endpoint`, `hub.state`."""

    def __init__(self, token: str = "hf_test_token"):
        self.state = HubState(token)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LocalHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
