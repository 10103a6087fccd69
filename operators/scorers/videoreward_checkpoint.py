"""VideoReward's released checkpoint layout (VideoAlign): `model_config.json` plus `checkpoint-N/` holding a
PEFT-wrapped state dict, read into plain Qwen2-VL (transformers 4.45 names) + `rm_head` weights with the LoRA merged.
The scorer is `videoreward.py`.
"""

import json
import re
from pathlib import Path

CHECKPOINT_FILES = ["model_config.json", "checkpoint-*/model.pth", "checkpoint-*/*.safetensors", "checkpoint-*/*.pth"]
LORA = re.compile(r"^(?P<module>.+)\.(?:base_layer\.(?P<param>weight|bias)|lora_(?P<ab>[AB])\.default\.weight)$")


def read_model_config(directory: Path) -> dict:
    """model_config.json of a VideoAlign checkpoint, checked for what this port reproduces."""
    file = directory / "model_config.json"
    if not file.is_file():
        raise ValueError(
            f"{directory} has no model_config.json; pass a hub id (KwaiVGI/VideoReward) or a directory in the "
            "released layout (model_config.json, checkpoint-N/model.pth)"
        )
    config = json.loads(file.read_text())
    data, model = config.get("data_config", {}), config.get("model_config", {})
    expect = {
        "data_config.prompt_template_type": (data.get("prompt_template_type"), "detailed_special"),
        "data_config.sample_type": (data.get("sample_type", "uniform"), "uniform"),
        "data_config.num_frames": (data.get("num_frames"), None),
        "model_config.use_special_tokens": (model.get("use_special_tokens"), True),
        "model_config.reward_token": (model.get("reward_token", "special"), "special"),
    }
    for key, (value, want) in expect.items():
        if value != want:
            raise ValueError(f"{file}: {key} is {value!r}; this port runs VideoReward's {want!r}")
    if model.get("output_dim", 1) not in (1, 3):
        raise ValueError(f"{file}: model_config.output_dim must be 1 or 3, got {model.get('output_dim')}")
    return config


def checkpoint_step(directory: Path, step: int | None) -> Path:
    """checkpoint-<step>, or the highest step (the reference's default)."""
    steps = sorted(
        (int(p.name.split("-")[-1]), p) for p in directory.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
    )
    if not steps:
        raise ValueError(f"{directory} has no checkpoint-N folder with the weights")
    if step is None:
        return steps[-1][1]
    found = dict(steps).get(step)
    if found is None:
        raise ValueError(f"{directory} has no checkpoint-{step}; it has steps {[s for s, _ in steps]}")
    return found


def weight_files(folder: Path) -> list[Path]:
    full = folder / "model.pth"
    if full.is_file():
        return [full]
    split = [folder / "adapter_model.safetensors", folder / "non_lora_state_dict.pth"]
    if all(f.is_file() for f in split):
        return split
    raise ValueError(f"{folder} has neither model.pth nor adapter_model.safetensors + non_lora_state_dict.pth")


def merged_state(files: list[Path], r: int, alpha: float) -> dict:
    """The release's PEFT-wrapped weights as a plain Qwen2-VL (transformers 4.45 names) + rm_head state dict,
    LoRA merged: W = W_base + (alpha / r) * B @ A, in float32 (merged weights stay float32)."""
    import torch

    state: dict = {}
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            part = {
                re.sub(r"\.lora_([AB])\.weight$", r".lora_\1.default.weight", k): v for k, v in load_file(file).items()
            }
        else:
            part = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        state.update({k.removeprefix("base_model.model."): v for k, v in part.items()})
    out, lora = {}, {}
    for key, value in state.items():
        match = LORA.match(key)
        if match and match["ab"]:
            lora.setdefault(match["module"], {})[match["ab"]] = value
        elif match:
            out[f"{match['module']}.{match['param']}"] = value
        else:
            out[key] = value
    for module, ab in lora.items():
        base = out[f"{module}.weight"]
        delta = (alpha / r) * (ab["B"].float() @ ab["A"].float())
        # Kept in float32: rounding the merged weight back to the release's bf16 would move fp32 (CPU) scores by
        # ~1e-2 from the reference, which adds the LoRA branch in the compute dtype; the model's own dtype applies.
        out[f"{module}.weight"] = base.float() + delta
    return out
