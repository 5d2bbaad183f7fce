"""A desired-state folder that adopts what a provider runs: its Provider document and the YAML
``generate`` writes for the given unowned servers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from reconciler.config.generate import generate_yaml
from reconciler.core.model import ObservedServer
from reconciler.core.provider import Provider


def generated_folder(
    folder: Path, provider: Provider, servers: Sequence[ObservedServer], cluster: str
) -> Path:
    folder.mkdir()
    document = {
        "apiVersion": "reconciler/v1",
        "kind": "Provider",
        "metadata": {"name": provider.name},
        "spec": {"type": provider.type_name, **provider.config.spec},
    }
    (folder / "provider.yaml").write_text(json.dumps(document), encoding="utf-8")
    generated = generate_yaml(list(servers), provider=provider.config, cluster=cluster, command="test")
    (folder / "adopted.yaml").write_text(generated.text, encoding="utf-8")
    return folder
