"""A small Hub-compatible HTTP server for push and download tests (huggingface_hub ships none).

It implements what `HfApi.create_repo` and `HfApi.upload_folder` call, with regular (non-LFS) uploads, and
stores the committed files in memory so a test can read back what was pushed. It also serves repositories to
`HfApi.model_info(files_metadata=True)` and `hf_hub_download` (`LocalHub.add_repo`), where a file can declare a
size larger than the bytes it holds: a repository "of 2 GB" costs nothing, and any download of it shows in
`state.requests`.
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
        self.declared_sizes: dict[str, dict[str, int]] = {}  # sizes the file list reports instead of the real ones
        self.requests: list[str] = []

    def commit(self, repo_id: str) -> str:
        """A commit id that changes with the repository's content."""
        digest = hashlib.sha1(repo_id.encode())
        for path, content in sorted(self.repos.get(repo_id, {}).items()):
            digest.update(path.encode() + hashlib.sha1(content).digest())
        return digest.hexdigest()


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

        def _file(self, head: bool) -> None:
            # /{namespace}/{name}/resolve/{revision}/{path}
            parts = self.path.split("?")[0].split("/", 5)
            repo_id = f"{parts[1]}/{parts[2]}"
            content = state.repos.get(repo_id, {}).get(parts[5]) if len(parts) == 6 else None
            if content is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound" if repo_id in state.repos else "RepoNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("X-Repo-Commit", state.commit(repo_id))
            self.send_header("ETag", f'"{hashlib.sha1(content).hexdigest()}"')
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if not head:
                self.wfile.write(content)

        def _model_info(self, repo_id: str) -> None:
            if repo_id not in state.repos:
                self._reply(404, {"error": f"Repository {repo_id} not found"})
                return
            declared = state.declared_sizes.get(repo_id, {})
            siblings = [
                {
                    "rfilename": path,
                    "size": declared.get(path, len(content)),
                    "blobId": hashlib.sha1(content).hexdigest(),
                }
                for path, content in sorted(state.repos[repo_id].items())
            ]
            self._reply(200, {"id": repo_id, "modelId": repo_id, "sha": state.commit(repo_id), "siblings": siblings,
                              "private": False, "tags": []})  # fmt: skip

        def do_HEAD(self):
            state.requests.append(f"HEAD {self.path}")
            self._file(head=True)

        def do_GET(self):
            state.requests.append(f"GET {self.path}")
            parts = self.path.split("?")[0].split("/")
            if parts[1:3] == ["api", "models"] and len(parts) in (5, 7):  # .../{ns}/{name}[/revision/{rev}]
                self._model_info(f"{parts[3]}/{parts[4]}")
            elif len(parts) >= 6 and parts[3] == "resolve":
                self._file(head=False)
            else:
                self._reply(404, {"error": f"not implemented: GET {self.path}"})

    return Handler


class LocalHub:
    """Context manager: `with LocalHub(token) as hub:` serves on 127.0.0.1; `hub.endpoint`, `hub.state`."""

    def __init__(self, token: str = "hf_test_token"):
        self.state = HubState(token)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_repo(self, repo_id: str, files: dict[str, bytes], declared_sizes: dict[str, int] | None = None) -> None:
        """Serves a model repository holding `files`; `declared_sizes` makes the file list report other sizes."""
        self.state.repos[repo_id] = dict(files)
        self.state.declared_sizes[repo_id] = dict(declared_sizes or {})

    def downloads(self, repo_id: str) -> list[str]:
        """The files of `repo_id` fetched so far (GET requests for their content)."""
        prefix = f"GET /{repo_id}/resolve/"
        return [request.split("/", 5)[5] for request in self.state.requests if request.startswith(prefix)]

    def __enter__(self) -> LocalHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
