"""Pushing a model folder to the Hugging Face Hub, with errors that say what to do."""

from __future__ import annotations

from pathlib import Path


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


__all__ = ["push_folder", "PushError"]
