"""The Hugging Face Hub: checking a repository before loading it, and pushing a model folder, with errors that
say what to do."""

from __future__ import annotations

import json
import re
from pathlib import Path

# The largest MIRNet this package defines is the paper's v1 (31.8 M parameters): 127 MB of float32 weights, 254 MB
# with its ONNX graph. 300 MB admits every MIRNet with its graph and refuses what could only fill a disk.
DEFAULT_MAX_MODEL_MB = 300
# What loading a repository downloads: its transformers weights (one file or shards; the .bin files only where no
# safetensors exist) and, for the ONNX Runtime backend, its graph.
_SAFETENSORS = re.compile(r"^model(-\d+-of-\d+)?\.safetensors$")
_PYTORCH_BIN = re.compile(r"^pytorch_model(-\d+-of-\d+)?\.bin$")
_ONNX_GRAPH = "onnx/model.onnx"
_MAX_CONFIG_BYTES = 1_000_000  # a MIRNet config.json is about 1 kB


class HubModelRefused(ValueError):
    """A Hub repository that is not a MIRNet model, or whose weights exceed the size limit; nothing was downloaded
    but its file list and (when small) its config.json."""


def looks_like_hub_id(name: str) -> bool:
    """Whether `name` names a Hub repository (`owner/name`) rather than a local folder.

    Example:

    ```python
    >>> from mirnet_hf.hub import looks_like_hub_id
    >>> looks_like_hub_id("someone/mirnet-x4"), looks_like_hub_id("checkpoints/mirnet-v2-medium-s2-denoising")
    (True, False)

    ```
    """
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}", name)) and not (
        Path(name).exists() or ".." in name
    )


def download_size(file_sizes: dict[str, int | None]) -> int:
    """Bytes that loading a model repository downloads, from its files' sizes (unknown sizes count as 0)."""
    weights = [name for name in file_sizes if _SAFETENSORS.match(name)]
    weights = weights or [name for name in file_sizes if _PYTORCH_BIN.match(name)]
    return sum(file_sizes[name] or 0 for name in [*weights, *([_ONNX_GRAPH] if _ONNX_GRAPH in file_sizes else [])])


def check_hub_model(
    repo_id: str, *, max_model_mb: float = DEFAULT_MAX_MODEL_MB, revision: str | None = None, token=None
) -> dict:
    """Checks a Hub repository before its weights are downloaded: its file list (with sizes) must hold a
    `config.json` of `model_type` "mirnet" and weights, and what loading it downloads must fit `max_model_mb`.
    Returns the configuration; raises `HubModelRefused` saying why, and lets connection errors through.

    Reads the repository's file list and its `config.json` only.
    """
    from huggingface_hub import HfApi, hf_hub_download

    info = HfApi(token=token).model_info(repo_id, revision=revision, files_metadata=True)
    sizes = {sibling.rfilename: sibling.size for sibling in info.siblings or []}
    if "config.json" not in sizes:
        raise HubModelRefused(f"{repo_id} has no config.json: it is not a transformers model, so not a MIRNet.")
    if (sizes["config.json"] or 0) > _MAX_CONFIG_BYTES:
        raise HubModelRefused(f"{repo_id}'s config.json is {sizes['config.json']:,} bytes: not a MIRNet's.")
    with open(hf_hub_download(repo_id, "config.json", revision=revision or info.sha, token=token)) as file:
        config = json.load(file)
    found = config.get("model_type") if isinstance(config, dict) else None
    if found != "mirnet":
        raise HubModelRefused(
            f"{repo_id} is not a MIRNet model: its model_type is {found!r}, where 'mirnet' is needed."
        )
    size = download_size(sizes)
    if size == 0:
        raise HubModelRefused(f"{repo_id} holds no weights (model.safetensors or pytorch_model.bin).")
    if size > max_model_mb * 1e6:
        raise HubModelRefused(
            f"{repo_id}'s weights are {size / 1e6:,.0f} MB, over this limit of {max_model_mb:g} MB (the largest "
            "MIRNet, the paper's v1 with its ONNX graph, is 254 MB)."
        )
    return config


class PushError(RuntimeError):
    """The push failed; the local folder is intact (the message says where and how to retry)."""


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload MIRNet model",
) -> str:
    """Creates `repo_id` if needed and uploads `folder` (not its checkpoints or logs); returns the commit URL.

    Raises `PushError` when no token is set or the Hub cannot be reached; the folder is never touched.
    """
    import huggingface_hub
    from huggingface_hub import HfApi

    folder = Path(folder)
    retry = f"The model is kept in {folder}; push it later with `hf upload {repo_id} {folder} .`."
    token = token or huggingface_hub.get_token()
    if not token:
        raise PushError(f"no Hugging Face token: run `hf auth login` or set HF_TOKEN. {retry}")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="model",
            commit_message=commit_message,
            ignore_patterns=["checkpoint-*", "checkpoint-*/**", "logs/**", "*.lock"],
        )
    except Exception as error:  # offline mode, DNS, refused connection, HTTP errors: all one message
        endpoint = huggingface_hub.constants.ENDPOINT
        raise PushError(
            f"could not push to {repo_id} on {endpoint}: {type(error).__name__}: {error}. {retry}"
        ) from error
    return str(getattr(commit, "commit_url", commit))


__all__ = [
    "DEFAULT_MAX_MODEL_MB",
    "HubModelRefused",
    "PushError",
    "check_hub_model",
    "download_size",
    "looks_like_hub_id",
    "push_folder",
]
