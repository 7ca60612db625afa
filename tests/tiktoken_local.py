"""Python tiktoken, offline: its encodings built from the same .tiktoken files llmledger
compiles in (tiktoken-rs's assets, found through `cargo metadata`), each checked against the
SHA-256 that tiktoken itself expects, so both sides use OpenAI's published vocabularies."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path
from unittest import mock

import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def assets_dir() -> Path:
    meta = json.loads(
        subprocess.run(
            [
                "cargo",
                "metadata",
                "--format-version",
                "1",
                "--manifest-path",
                str(REPO / "Cargo.toml"),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    for pkg in meta["packages"]:
        if pkg["name"] == "tiktoken-rs":
            return Path(pkg["manifest_path"]).parent / "assets"
    raise LookupError("tiktoken-rs is not a dependency of llmledger")


def _load_local(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
    path = assets_dir() / url.rsplit("/", 1)[1]
    data = path.read_bytes()
    if expected_hash is not None and hashlib.sha256(data).hexdigest() != expected_hash:
        raise ValueError(f"{path} is not the vocabulary tiktoken expects (sha256 mismatch)")
    with mock.patch.dict("os.environ", {"TIKTOKEN_CACHE_DIR": ""}):
        return tiktoken.load.load_tiktoken_bpe(str(path))


@functools.cache
def local_encoding(name: str) -> tiktoken.Encoding:
    """Python tiktoken's `name` encoding, without any download."""
    with mock.patch.object(openai_public, "load_tiktoken_bpe", _load_local):
        params = openai_public.ENCODING_CONSTRUCTORS[name]()
    return tiktoken.Encoding(**params)
