"""A tiny random-weight MJ-VIDEO checkpoint in the released layout (tests, `make demo`, benchmarks).

Same structure as `MJ-Bench/MJ-VIDEO-2B` on top of `OpenGVLab/InternVL2-2B`: one `model.safetensors` holding the
whole reward wrapper's state dict under the reference's remote-code names (`model.vision_model.*` InternViT with
fused `attn.qkv`, `model.mlp1.*`, `model.language_model.model.*` InternLM2 with fused, KV-grouped
`attention.wqkv`, the unused LM head `model.language_model.output.weight`, and the head's `regression_layer`,
`reward_transform_matrix`, `aspect_gating.*`, `criteria_gating.*`), an InternVL2 `config.json`, and the real
InternLM2 tokenizer. Only widths and depths are tiny (GQA kept, so the wqkv split is exercised; 56 px frames give
4 image tokens per frame), so the scorer loads it through exactly the code path real weights take.
Weights are deterministic in `seed` and scaled so scores move with frames and caption.
"""

import json
import math
import shutil
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parents[2] / "tests" / "fixtures"
VISION = {
    "architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 56, "patch_size": 14,
    "num_channels": 3, "hidden_act": "gelu", "norm_type": "layer_norm", "layer_norm_eps": 1e-6, "qkv_bias": True,
    "qk_normalization": False, "use_flash_attn": False, "drop_path_rate": 0.0, "dropout": 0.0,
    "attention_dropout": 0.0, "initializer_factor": 1.0, "initializer_range": 0.02,
}  # fmt: skip
LLM = {
    "architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2", "vocab_size": 92553, "hidden_size": 64,
    "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "hidden_act": "silu", "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "bias": False,
    "rope_theta": 1000000, "rope_scaling": {"type": "dynamic", "factor": 2.0}, "bos_token_id": 1,
    "eos_token_id": 2, "pad_token_id": 2, "tie_word_embeddings": False, "attn_implementation": "eager",
}  # fmt: skip
GATING = {"gating_temperature": 1.0, "gating_hidden_dim": 16, "gating_n_hidden": 3}
# The published sizes (InternViT-300M-448px, InternLM2-chat-1.8B, the reference's gating), for GPU benchmarks.
FULL = {
    "vision": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
               "image_size": 448},
    "llm": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24, "num_attention_heads": 16,
            "num_key_value_heads": 8},
    "gating": {"gating_hidden_dim": 1024},
}  # fmt: skip


def config(full: bool = False) -> dict[str, Any]:
    """InternVL2's config.json layout (InternVLChatConfig), plus the reward wrapper's fields; `full`: the
    published widths and depths instead of tiny ones."""
    vision = dict(VISION, **FULL["vision"]) if full else dict(VISION)
    llm = dict(LLM, **FULL["llm"]) if full else dict(LLM)
    gating = dict(GATING, **FULL["gating"]) if full else GATING
    return {
        "architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "vision_config": vision,
        "llm_config": llm, "downsample_ratio": 0.5, "force_image_size": vision["image_size"],
        "ps_version": "v2", "select_layer": -1, "template": "internlm2-chat", "dynamic_image_size": True,
        "use_thumbnail": True, "min_dynamic_patch": 1, "max_dynamic_patch": 12, "use_backbone_lora": 0,
        "use_llm_lora": 0, "torch_dtype": "bfloat16", "num_objectives": 28, "num_aspects": 5,
        "aspect2criteria": {"0": [0, 1, 2, 3, 4], "1": [5, 6, 7, 8, 9, 10], "2": [11, 12, 13, 14, 15],
                            "3": [16, 17, 18, 19, 20, 21, 22], "4": [23, 24, 25, 26, 27]},
        **gating,
    }  # fmt: skip


def released_state_dict(cfg: dict[str, Any], seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """The reward wrapper's state dict under the reference's names, random but deterministic (fp32) for a
    given `device` (CUDA generates full-size weights in seconds)."""
    import torch

    gen = torch.Generator(device).manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def put(name: str, *shape: int, scale: float = 1.0, shift: float = 0.0) -> None:
        sd[name] = torch.randn(*shape, generator=gen, device=device) * scale + shift

    def linear(name: str, out: int, inp: int, bias: bool = True, gain: float = 1.0) -> None:
        put(f"{name}.weight", out, inp, scale=gain / math.sqrt(inp))
        if bias:
            put(f"{name}.bias", out, scale=0.1)

    def norm(name: str, width: int, bias: bool = True) -> None:
        put(f"{name}.weight", width, scale=0.1, shift=1.0)
        if bias:
            put(f"{name}.bias", width, scale=0.1)

    vc, lc = cfg["vision_config"], cfg["llm_config"]
    dv, patch, grid = vc["hidden_size"], vc["patch_size"], vc["image_size"] // vc["patch_size"]
    v = "model.vision_model"
    put(f"{v}.embeddings.class_embedding", 1, 1, dv, scale=0.5)
    put(f"{v}.embeddings.position_embedding", 1, grid * grid + 1, dv, scale=0.5)
    linear(f"{v}.embeddings.patch_embedding", dv, 3 * patch * patch)
    sd[f"{v}.embeddings.patch_embedding.weight"] = sd[f"{v}.embeddings.patch_embedding.weight"].view(
        dv, 3, patch, patch
    )
    for i in range(vc["num_hidden_layers"]):
        p = f"{v}.encoder.layers.{i}"
        linear(f"{p}.attn.qkv", 3 * dv, dv, bias=vc["qkv_bias"], gain=2.0)
        if vc["qk_normalization"]:
            norm(f"{p}.attn.q_norm", dv, bias=False)
            norm(f"{p}.attn.k_norm", dv, bias=False)
        linear(f"{p}.attn.proj", dv, dv)
        linear(f"{p}.mlp.fc1", vc["intermediate_size"], dv)
        linear(f"{p}.mlp.fc2", dv, vc["intermediate_size"])
        norm(f"{p}.norm1", dv, bias=vc["norm_type"] == "layer_norm")
        norm(f"{p}.norm2", dv, bias=vc["norm_type"] == "layer_norm")
        put(f"{p}.ls1", dv, scale=0.1, shift=0.5)
        put(f"{p}.ls2", dv, scale=0.1, shift=0.5)
    h, width = lc["hidden_size"], dv * int(1 / cfg["downsample_ratio"]) ** 2
    norm("model.mlp1.0", width)
    linear("model.mlp1.1", h, width)
    linear("model.mlp1.3", h, h)
    heads, kv = lc["num_attention_heads"], lc["num_key_value_heads"]
    m = "model.language_model.model"
    put(f"{m}.tok_embeddings.weight", lc["vocab_size"], h)
    for i in range(lc["num_hidden_layers"]):
        p = f"{m}.layers.{i}"
        linear(f"{p}.attention.wqkv", (heads + 2 * kv) * (h // heads), h, bias=lc["bias"], gain=2.0)
        linear(f"{p}.attention.wo", h, h, bias=lc["bias"])
        linear(f"{p}.feed_forward.w1", lc["intermediate_size"], h, bias=False)
        linear(f"{p}.feed_forward.w3", lc["intermediate_size"], h, bias=False)
        linear(f"{p}.feed_forward.w2", h, lc["intermediate_size"], bias=False)
        norm(f"{p}.attention_norm", h, bias=False)
        norm(f"{p}.ffn_norm", h, bias=False)
    norm(f"{m}.norm", h, bias=False)
    put("model.language_model.output.weight", lc["vocab_size"], h, scale=0.02)
    linear("regression_layer", 28, h, bias=False)
    sd["reward_transform_matrix"] = torch.eye(28, device=device)  # stored identity, as released
    for gate, out in (("aspect_gating", 5), ("criteria_gating", 28)):
        dims = [h] + [cfg["gating_hidden_dim"]] * cfg["gating_n_hidden"] + [out]
        for j, (a, b) in enumerate(zip(dims, dims[1:])):
            linear(f"{gate}.layers.{j}", b, a, gain=1.5)
        put(f"{gate}.logit_scale", 1, scale=0.2, shift=1.0)
    return sd


def build(out_dir: str | Path, seed: int = 0, full: bool = False, device: str = "cpu") -> Path:
    """Write the checkpoint (bf16 weights, config, real InternLM2 tokenizer) into `out_dir`; returns it.
    `full`: the published sizes (2.2B parameters, for GPU benchmarks); `device` generates the weights."""
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config(full)
    state = {k: t.to(torch.bfloat16).cpu().contiguous() for k, t in released_state_dict(cfg, seed, device).items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    shutil.copyfile(FIXTURES / "internlm2_tokenizer.model", out / "tokenizer.model")
    shutil.copyfile(FIXTURES / "internvl2_tokenizer_config.json", out / "tokenizer_config.json")
    return out
