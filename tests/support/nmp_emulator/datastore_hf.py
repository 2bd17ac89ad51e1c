"""NeMo Data Store: its namespace API (``/v1/datastore/namespaces``) and the Hugging Face Hub
compatible API under ``/v1/hf`` that ``huggingface_hub.HfApi(endpoint=f"{base}/v1/hf")`` calls.

Implemented for ``create_repo``, ``delete_repo``, ``upload_file``/``upload_folder``/
``create_commit`` (``preupload`` always answers ``uploadMode: "regular"``, so file contents come
inline, base64-encoded, in the NDJSON commit: no LFS, no Xet), ``list_repo_files``/
``list_repo_tree``, ``repo_info``/``dataset_info``/``repo_exists``, ``file_exists`` and
``hf_hub_download`` (HEAD + GET on ``/{type}s/{repo}/resolve/{revision}/{path}``). Files live in
memory; a repository keeps its latest files only.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from tests.support.nmp_emulator.http import HTTPError, Request, Response, Router
from tests.support.nmp_emulator.state import Context, Repo, entity_times, git_blob_oid

_TYPES = {"dataset", "model", "space"}
HF_PREFIX = "/v1/hf"


def _hf_error(status: int, message: str, code: str | None = None, **headers: str) -> HTTPError:
    all_headers = dict(headers)
    if code:
        all_headers["X-Error-Code"] = code
    all_headers["X-Error-Message"] = message
    return HTTPError(status, message, headers=all_headers, payload={"error": message})


def _url_prefix(repo_type: str) -> str:
    return "" if repo_type == "model" else f"{repo_type}s/"


class DataStoreService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def hf_url(self) -> str:
        return f"{self.ctx.base_url}{HF_PREFIX}"

    def register(self, router: Router) -> None:
        r = router
        r.add("POST", "/v1/datastore/namespaces", self.create_namespace)
        r.add("GET", "/v1/datastore/namespaces", self.list_namespaces)
        r.add("GET", "/v1/datastore/namespaces/{ns}", self.get_namespace)
        r.add("DELETE", "/v1/datastore/namespaces/{ns}", self.delete_namespace)
        hf = HF_PREFIX
        r.add("POST", hf + "/api/repos/create", self.create_repo)
        r.add("DELETE", hf + "/api/repos/delete", self.delete_repo)
        repo = hf + "/api/{rt}s/{ns}/{name}"
        r.add("GET", repo, self.repo_info)
        r.add("GET", repo + "/revision/{rev}", self.repo_info)
        r.add("POST", repo + "/preupload/{rev}", self.preupload)
        r.add("POST", repo + "/commit/{rev}", self.commit)
        r.add("GET", repo + "/tree/{rev}", self.tree)
        r.add("GET", repo + "/tree/{rev}/{path:path}", self.tree)
        r.add("GET", hf + "/{rt}s/{ns}/{name}/resolve/{rev}/{path:path}", self.resolve)
        r.add("GET", hf + "/{ns}/{name}/resolve/{rev}/{path:path}", self.resolve_model)

    def check_auth(self, req: Request) -> None:
        token = self.ctx.config.datastore_token
        if token is not None and req.headers.get("authorization") != f"Bearer {token}":
            raise _hf_error(401, "Invalid credentials in Authorization header")

    # --- Data Store namespaces ---

    def create_namespace(self, req: Request) -> Response:
        self.check_auth(req)
        ns = req.form().get("namespace", "")
        if not ns:
            raise HTTPError(422, "'namespace' is required")
        with self.ctx.state.lock:
            if ns in self.ctx.state.datastore_namespaces:
                raise HTTPError(409, f"namespace '{ns}' already exists")
            entity = {"namespace": ns, **entity_times(self.ctx, self.ctx.now())}
            self.ctx.state.datastore_namespaces[ns] = entity
        return Response.json(entity, 201)

    def list_namespaces(self, req: Request) -> Response:
        self.check_auth(req)
        with self.ctx.state.lock:
            return Response.json({"namespaces": list(self.ctx.state.datastore_namespaces.values())})

    def get_namespace(self, req: Request, ns: str) -> Response:
        self.check_auth(req)
        with self.ctx.state.lock:
            entity = self.ctx.state.datastore_namespaces.get(ns)
        if entity is None:
            raise HTTPError(404, f"namespace '{ns}' not found")
        return Response.json(entity)

    def delete_namespace(self, req: Request, ns: str) -> Response:
        self.check_auth(req)
        with self.ctx.state.lock:
            if self.ctx.state.datastore_namespaces.pop(ns, None) is None:
                raise HTTPError(404, f"namespace '{ns}' not found")
        return Response.empty(204)

    # --- repositories ---

    def _repo(self, rt: str, repo_id: str) -> Repo:
        if rt not in _TYPES:
            raise _hf_error(400, f"invalid repo type '{rt}'")
        repo = self.ctx.state.repos.get((rt, repo_id))
        if repo is None:
            raise _hf_error(404, f"Repository not found: {rt}s/{repo_id}", "RepoNotFound")
        return repo

    @staticmethod
    def _check_revision(repo: Repo, rev: str) -> None:
        if rev not in ("main", repo.sha, *repo.commits):
            raise _hf_error(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def create_repo(self, req: Request) -> Response:
        self.check_auth(req)
        body = req.json_object()
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _hf_error(400, "'name' is required")
        rt = body.get("type") or "model"
        if rt not in _TYPES:
            raise _hf_error(400, f"invalid repo type '{rt}'")
        org = body.get("organization")
        repo_id = f"{org}/{name}" if org else name
        url = f"{self.hf_url}/{_url_prefix(rt)}{repo_id}"
        with self.ctx.state.lock:
            if (rt, repo_id) in self.ctx.state.repos:
                raise HTTPError(
                    409,
                    f"You already created this {rt} repo",
                    payload={"error": f"You already created this {rt} repo", "url": url},
                )
            now = self.ctx.now()
            repo = Repo(rt, repo_id, now, self.ctx.ids.sha(), updated=now)
            self.ctx.state.repos[(rt, repo_id)] = repo
        return Response.json({"url": url, "name": repo_id, "id": self.ctx.ids.new("repo")})

    def delete_repo(self, req: Request) -> Response:
        self.check_auth(req)
        body = req.json_object()
        org, name = body.get("organization"), body.get("name")
        repo_id = f"{org}/{name}" if org else str(name)
        rt = body.get("type") or "model"
        with self.ctx.state.lock:
            self._repo(rt, repo_id)
            del self.ctx.state.repos[(rt, repo_id)]
        return Response.json({})

    def repo_info(self, req: Request, rt: str, ns: str, name: str, rev: str = "main") -> Response:
        self.check_auth(req)
        with self.ctx.state.lock:
            repo = self._repo(rt, f"{ns}/{name}")
            self._check_revision(repo, rev)
            return Response.json(
                {
                    "id": repo.repo_id,
                    "author": ns,
                    "sha": repo.sha,
                    "private": False,
                    "disabled": False,
                    "createdAt": self.ctx.clock.iso_z(repo.created),
                    "lastModified": self.ctx.clock.iso_z(repo.updated),
                    "tags": [],
                    "siblings": [
                        {"rfilename": path, "size": len(data)}
                        for path, data in sorted(repo.files.items())
                    ],
                }
            )

    def preupload(self, req: Request, rt: str, ns: str, name: str, rev: str) -> Response:
        self.check_auth(req)
        body = req.json_object()
        with self.ctx.state.lock:
            repo = self._repo(rt, f"{ns}/{name}")
            self._check_revision(repo, rev)
            files = []
            for entry in body.get("files") or []:
                path = entry.get("path")
                existing = repo.files.get(path)
                files.append(
                    {
                        "path": path,
                        "uploadMode": "regular",
                        "shouldIgnore": False,
                        "oid": git_blob_oid(existing) if existing is not None else None,
                    }
                )
        return Response.json({"files": files, "commitOid": repo.sha})

    def commit(self, req: Request, rt: str, ns: str, name: str, rev: str) -> Response:
        self.check_auth(req)
        try:
            lines = [orjson.loads(line) for line in req.body.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise _hf_error(400, f"invalid NDJSON commit payload: {exc}") from exc
        if not lines or lines[0].get("key") != "header":
            raise _hf_error(400, "the commit payload must start with a header line")
        repo_id = f"{ns}/{name}"
        with self.ctx.state.lock:
            repo = self._repo(rt, repo_id)
            self._check_revision(repo, rev)
            staged = dict(repo.files)
            added: list[tuple[str, int]] = []
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value") or {}
                path = str(value.get("path", "")).strip("/")
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise _hf_error(400, f"unsupported encoding {value.get('encoding')!r}")
                    data = base64.b64decode(value.get("content", ""))
                    staged[path] = data
                    added.append((path, len(data)))
                elif key == "deletedFile":
                    if path not in staged:
                        raise _hf_error(404, "A file with this name doesn't exist", "EntryNotFound")
                    del staged[path]
                elif key == "deletedFolder":
                    for existing in [p for p in staged if p.startswith(path + "/")]:
                        del staged[existing]
                elif key == "lfsFile":
                    raise _hf_error(400, "LFS uploads are not emulated (preupload says 'regular')")
                else:
                    raise _hf_error(400, f"unknown commit operation {key!r}")
            repo.files = staged
            repo.commits.append(repo.sha)
            repo.sha = self.ctx.ids.sha()
            repo.updated = self.ctx.now()
            self.ctx.state.uploads.extend((repo_id, path, size) for path, size in added)
            sha = repo.sha
        return Response.json(
            {
                "success": True,
                "commitOid": sha,
                "commitUrl": f"{self.hf_url}/{_url_prefix(rt)}{repo_id}/commit/{sha}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def tree(self, req: Request, rt: str, ns: str, name: str, rev: str, path: str = "") -> Response:
        self.check_auth(req)
        recursive = (req.param("recursive") or "false").lower() in ("true", "1")
        prefix = path.strip("/")
        with self.ctx.state.lock:
            repo = self._repo(rt, f"{ns}/{name}")
            self._check_revision(repo, rev)
            files = dict(repo.files)
        under = {p: d for p, d in files.items() if not prefix or p.startswith(prefix + "/")}
        if prefix and not under:
            if prefix in files:
                under = {prefix: files[prefix]}
            else:
                raise _hf_error(404, f"{prefix} does not exist", "EntryNotFound")
        entries: dict[str, dict[str, Any]] = {}
        base_depth = len(prefix.split("/")) if prefix else 0
        for file_path, data in sorted(under.items()):
            parts = file_path.split("/")
            folders = ["/".join(parts[: i + 1]) for i in range(base_depth, len(parts) - 1)]
            if not recursive:
                folders = folders[:1]
            for folder in folders:
                oid = git_blob_oid(folder.encode())
                entries.setdefault(folder, {"type": "directory", "path": folder, "oid": oid})
            if recursive or len(parts) == base_depth + 1:
                entries[file_path] = {
                    "type": "file",
                    "path": file_path,
                    "size": len(data),
                    "oid": git_blob_oid(data),
                }
        return Response.json(list(entries.values()))

    def resolve(self, req: Request, rt: str, ns: str, name: str, rev: str, path: str) -> Response:
        self.check_auth(req)
        with self.ctx.state.lock:
            repo = self._repo(rt, f"{ns}/{name}")
            self._check_revision(repo, rev)
            data = repo.files.get(path)
            sha = repo.sha
        if data is None:
            raise _hf_error(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": sha})
        return Response(
            200,
            data,
            {"X-Repo-Commit": sha, "ETag": f'"{git_blob_oid(data)}"', "Accept-Ranges": "none"},
            content_type="application/octet-stream",
        )

    def resolve_model(self, req: Request, ns: str, name: str, rev: str, path: str) -> Response:
        return self.resolve(req, "model", ns, name, rev, path)
