"""Keep every library offline and quiet: no hub downloads, no telemetry.

Called when the CLI starts and when an Engine is built (never at import).
Values a person has set explicitly are kept, except that telemetry and
analytics stay off.
"""

from __future__ import annotations

import os

_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",  # models come from pip packages, never from a hub
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
_FORCED = {
    "ANONYMIZED_TELEMETRY": "False",  # Chroma
    "GRADIO_ANALYTICS_ENABLED": "False",
    "DO_NOT_TRACK": "1",
    "LLAMA_INDEX_DISABLE_TELEMETRY": "1",
    # ONNX Runtime (1.32 on Linux too) starts its 1DS telemetry when imported and sends
    # to mobile.events.data.microsoft.com within seconds; only this variable, read
    # before the import, stops it (disable_telemetry_events() does not).
    "ORT_DISABLE_TELEMETRY": "1",
}


def enforce() -> None:
    for k, v in _DEFAULTS.items():
        os.environ.setdefault(k, v)
    os.environ.update(_FORCED)
