"""MJ-VIDEO's model: InternVL2 (InternViT -> pixel shuffle -> mlp1 -> InternLM2) from maintained transformers
parts, plus the reward head, and the strict loader for the released weights. The scorer is `mjvideo.py`.

No remote code: InternViT is transformers' `InternVLVisionModel` (mean-pooling variant, which has no final
LayerNorm, like InternViT), and InternLM2 is `LlamaModel` once its fused `wqkv` is split per KV group.
`convert_weights` maps the remote-code weight names of an `InternVLChatModel` onto these modules, so a
checkpoint saved by the reference code loads unchanged. The forward returns the LLM's final-norm hidden states
(no LM head, no KV cache): reward heads read them at chosen positions.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidscore.schemas import mjvideo as cols

# InternVL2's `internlm2-chat` template (ChatML markers, MPT separator style: no newline after <|im_end|>), with
# the old system message InternVL2 was trained with; byte-exact, see the tests for its sha256.
SYSTEM_MESSAGE = (
    "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。"
)
TEMPLATES = ("internlm2-chat", "Hermes-2")  # identical prompts at inference; others are not supported
IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
# Remote-code -> transformers names, applied as substring replacements (qkv/wqkv are split separately).
_RENAMES = (
    ("embeddings.class_embedding", "embeddings.cls_token"),
    ("embeddings.position_embedding", "embeddings.position_embeddings"),
    ("embeddings.patch_embedding.", "embeddings.patch_embeddings.projection."),
    ("encoder.layers.", "encoder.layer."),
    (".attn.proj.", ".attention.projection_layer."),
    (".attn.q_norm.", ".attention.q_norm."),
    (".attn.k_norm.", ".attention.k_norm."),
    (".norm1.", ".layernorm_before."),
    (".norm2.", ".layernorm_after."),
    (".ls1", ".lambda_1"),
    (".ls2", ".lambda_2"),
    ("language_model.model.", "language_model."),
    ("tok_embeddings.", "embed_tokens."),
    (".attention.wo.", ".self_attn.o_proj."),
    (".feed_forward.w1.", ".mlp.gate_proj."),
    (".feed_forward.w3.", ".mlp.up_proj."),
    (".feed_forward.w2.", ".mlp.down_proj."),
    (".attention_norm.", ".input_layernorm."),
    (".ffn_norm.", ".post_attention_layernorm."),
)
UNUSED_WEIGHTS = ("language_model.output.weight",)  # the LM head: scorers never need vocabulary logits


def image_size(config: dict[str, Any]) -> int:
    """Frame side length the model expects (`force_image_size`, else the vision tower's size)."""
    return int(config.get("force_image_size") or config["vision_config"].get("image_size", 224))


def num_image_tokens(config: dict[str, Any]) -> int:
    """LLM tokens per frame tile: (side / patch)^2 * downsample^2 (256 for InternVL2 at 448 px)."""
    patch = config["vision_config"].get("patch_size", 14)
    return int((image_size(config) // patch) ** 2 * config.get("downsample_ratio", 0.5) ** 2)


def check_config(config: dict[str, Any]) -> None:
    """Raise on InternVL2 variants this rebuild does not reproduce."""
    arch = (config.get("llm_config", {}).get("architectures") or ["?"])[0]
    if arch != "InternLM2ForCausalLM":
        raise ValueError(f"unsupported InternVL2 language model {arch!r}; only InternLM2ForCausalLM is rebuilt")
    if config.get("template") not in TEMPLATES:
        raise ValueError(f"unsupported chat template {config.get('template')!r}; supported: {TEMPLATES}")
    layout = config.get("aspect2criteria")
    if layout is not None and [tuple(v) for v in layout.values()] != list(cols.ASPECT_CRITERIA):
        raise ValueError(f"aspect2criteria {layout} differs from MJ-VIDEO's {cols.ASPECT_CRITERIA}")
    scaling = config["llm_config"].get("rope_scaling")
    if scaling and (scaling.get("type") or scaling.get("rope_type")) not in ("linear", "dynamic"):
        raise ValueError(f"unsupported rope_scaling {scaling}; InternLM2 supports linear and dynamic")


def video_prompt(caption: str, num_frames: int, tokens_per_frame: int) -> str:
    """The InternVL2 video chat query as MJ-VIDEO builds it.

    "Frame{i}: <image>\\n" per frame, then the caption, in the chat template; the reference passes one patch
    count for all frames, so only the FIRST `<image>` becomes `<img>` + T*tokens `<IMG_CONTEXT>` + `</img>` and
    "Frame2: <image>" ... stay literal text (the model was trained that way).
    """
    question = "".join(f"Frame{i + 1}: <image>\n" for i in range(num_frames)) + caption
    query = f"<|im_start|>system\n{SYSTEM_MESSAGE}<|im_end|><|im_start|>user\n{question}<|im_end|>"
    query += "<|im_start|>assistant\n"
    return query.replace("<image>", IMG_START + IMG_CONTEXT * (num_frames * tokens_per_frame) + IMG_END, 1)


def _vision_config(config: dict[str, Any], attn: str) -> Any:
    from transformers import InternVLVisionConfig

    vc = config["vision_config"]  # defaults are InternVisionConfig's
    return InternVLVisionConfig(
        hidden_size=vc.get("hidden_size", 3200),
        num_hidden_layers=vc.get("num_hidden_layers", 48),
        num_attention_heads=vc.get("num_attention_heads", 25),
        intermediate_size=vc.get("intermediate_size", 12800),
        hidden_act=vc.get("hidden_act", "gelu"),
        norm_type=vc.get("norm_type", "rms_norm"),
        layer_norm_eps=vc.get("layer_norm_eps", 1e-6),
        attention_bias=vc.get("qkv_bias", False),
        use_qk_norm=vc.get("qk_normalization", True),
        image_size=vc.get("image_size", 224),
        patch_size=vc.get("patch_size", 14),
        num_channels=vc.get("num_channels", 3),
        use_mean_pooling=True,
        attn_implementation=attn,
    )


def _llm_config(config: dict[str, Any], attn: str) -> Any:
    from transformers import LlamaConfig

    lc = config["llm_config"]  # defaults are InternLM2Config's
    rope = {"rope_type": "default", "rope_theta": float(lc.get("rope_theta", 10000))}
    if lc.get("rope_scaling"):
        scaling = lc["rope_scaling"]
        rope.update(rope_type=scaling.get("type") or scaling["rope_type"], factor=float(scaling["factor"]))
    return LlamaConfig(
        vocab_size=lc.get("vocab_size", 103168),
        hidden_size=lc.get("hidden_size", 4096),
        intermediate_size=lc.get("intermediate_size", 11008),
        num_hidden_layers=lc.get("num_hidden_layers", 32),
        num_attention_heads=lc.get("num_attention_heads", 32),
        num_key_value_heads=lc.get("num_key_value_heads") or lc.get("num_attention_heads", 32),
        hidden_act=lc.get("hidden_act", "silu"),
        max_position_embeddings=lc.get("max_position_embeddings", 2048),
        rms_norm_eps=lc.get("rms_norm_eps", 1e-6),
        attention_bias=lc.get("bias", True),
        rope_parameters=rope,
        tie_word_embeddings=False,
        use_cache=False,
        attn_implementation=attn,
    )


def pixel_shuffle(x: torch.Tensor, scale: float, version: str) -> torch.Tensor:
    """InternVL's space-to-depth on an (N, side, side, C) grid; `v1` leaves the grid transposed (as trained)."""
    n, w, h, c = x.shape
    x = x.view(n, w, int(h * scale), int(c / scale)).permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
    return x if version == "v1" else x.permute(0, 2, 1, 3).contiguous()


class InternVL2(nn.Module):
    """The InternVL2 backbone; attribute names follow the remote code so weights map one to one."""

    def __init__(self, config: dict[str, Any], attn: str = "sdpa") -> None:
        from transformers import InternVLVisionModel, LlamaModel

        super().__init__()
        check_config(config)
        self.vision_model = InternVLVisionModel(_vision_config(config, attn))
        self.llm_config = _llm_config(config, attn)
        self.language_model = LlamaModel(self.llm_config)
        self.select_layer = int(config.get("select_layer", -1))
        self.downsample = float(config.get("downsample_ratio", 0.5))
        self.ps_version = config.get("ps_version", "v1")
        vit, llm = self.vision_model.config.hidden_size, self.llm_config.hidden_size
        width = vit * int(1 / self.downsample) ** 2
        self.mlp1 = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, llm), nn.GELU(), nn.Linear(llm, llm))

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) normalised tiles -> (N, tokens, H) LLM embeddings."""
        if self.select_layer == -1:
            out = self.vision_model(pixel_values=pixel_values).last_hidden_state
        else:
            out = self.vision_model(pixel_values=pixel_values, output_hidden_states=True)
            out = out.hidden_states[self.select_layer]
        out = out[:, 1:, :]  # drop the class token
        side = int(out.shape[1] ** 0.5)
        out = pixel_shuffle(out.reshape(out.shape[0], side, side, -1), self.downsample, self.ps_version)
        return self.mlp1(out.reshape(out.shape[0], -1, out.shape[-1]))

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, image_token: int
    ) -> torch.Tensor:
        """Final-norm hidden states (B, L, H); image features fill the `image_token` slots in order."""
        embeds = self.language_model.embed_tokens(input_ids)
        slots = input_ids == image_token
        features = self.image_features(pixel_values).reshape(-1, embeds.shape[-1])
        if int(slots.sum()) != features.shape[0]:
            raise ValueError(f"{int(slots.sum())} image tokens in the prompt but {features.shape[0]} features")
        embeds = embeds.masked_scatter(slots.unsqueeze(-1), features.to(embeds.dtype))
        out = self.language_model(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state


def convert_weights(name: str, tensor: torch.Tensor, config: dict[str, Any]) -> Iterator[tuple[str, torch.Tensor]]:
    """One remote-code backbone weight (name without the wrapper's `model.` prefix) -> transformers weights."""
    if ".attn.qkv." in name:  # InternViT: rows are [q; k; v]
        q, k, v = tensor.chunk(3, dim=0)
        for part, t in zip("qkv", (q, k, v)):
            yield _rename(name).replace(".attn.qkv.", f".attention.{part}_proj."), t.contiguous()
        return
    if ".attention.wqkv." in name:  # InternLM2: per KV head, `rep` query heads then one key and one value head
        lc = config["llm_config"]
        heads = lc["num_attention_heads"]
        kv = lc.get("num_key_value_heads") or heads
        rep, dim = heads // kv, lc["hidden_size"] // heads
        grouped = tensor.reshape(kv, rep + 2, dim, *tensor.shape[1:])
        parts = (grouped[:, :rep], grouped[:, rep], grouped[:, rep + 1])
        for part, t in zip("qkv", parts):
            out = _rename(name).replace(".attention.wqkv.", f".self_attn.{part}_proj.")
            yield out, t.reshape(-1, *tensor.shape[1:]).contiguous()
        return
    yield _rename(name), tensor


def _rename(name: str) -> str:
    for old, new in _RENAMES:
        name = name.replace(old, new)
    return name


class Gate(nn.Module):
    """The reference's GatingNetwork: Linear+ReLU layers, a last Linear, then softmax(x / T) * logit_scale."""

    def __init__(self, dims: list[int], temperature: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.logit_scale = nn.Parameter(torch.ones(1))
        self.temperature = temperature

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)

    def weights(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits / self.temperature, dim=-1) * self.logit_scale[0]


class RewardHead(nn.Module):
    """28 criterion rewards, criteria-gated into 5 aspects, aspect-gated into one overall score."""

    def __init__(self, hidden: int, aspect_dims: list[int], criteria_dims: list[int], temperature: float) -> None:
        super().__init__()
        n = len(cols.CRITERIA)
        self.regression_layer = nn.Linear(hidden, n, bias=False)
        self.reward_transform_matrix = nn.Parameter(torch.eye(n), requires_grad=False)  # stored identity
        self.aspect_gating = Gate([hidden, *aspect_dims, len(cols.ASPECTS)], temperature)
        self.criteria_gating = Gate([hidden, *criteria_dims, n], temperature)

    def forward(self, last: torch.Tensor, prompt: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(rewards (B, 28), aspects (B, 5), overall (B,)) from hidden states at the two read positions."""
        rewards = self.regression_layer(last) @ self.reward_transform_matrix
        criteria = self.criteria_gating.logits(prompt)
        aspects = torch.stack(
            [(rewards[:, s] * self.criteria_gating.weights(criteria[:, s])).sum(-1) for s in cols.ASPECT_CRITERIA],
            dim=-1,
        ).float()  # the reference collects aspect scores in an fp32 tensor, also under bf16
        overall = (aspects * self.aspect_gating.weights(self.aspect_gating.logits(prompt))).sum(-1)
        return rewards, aspects, overall


def load_model(path: Path, config: dict[str, Any], device: str, dtype: Any, attn: str) -> tuple[nn.Module, ...]:
    """Backbone + head from the released wrapper state dict (`model.*` + head keys), strictly."""
    from safetensors import safe_open
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    with safe_open(str(path), framework="pt") as f:
        names = set(f.keys())

        def gate_dims(prefix: str) -> list[int]:
            count = sum(1 for n in names if re.fullmatch(rf"{prefix}\.layers\.\d+\.weight", n))
            return [f.get_slice(f"{prefix}.layers.{i}.weight").get_shape()[0] for i in range(count - 1)]

        hidden = config["llm_config"]["hidden_size"]
        temperature = float(config.get("gating_temperature", 1.0))
        with torch.device("meta"):
            backbone = InternVL2(config, attn)
            head = RewardHead(hidden, gate_dims("aspect_gating"), gate_dims("criteria_gating"), temperature)
        backbone_state, head_state = {}, {}
        for name in sorted(names - {f"model.{u}" for u in UNUSED_WEIGHTS}):
            if name.startswith("model."):
                for new, t in convert_weights(name[len("model.") :], f.get_tensor(name), config):
                    backbone_state[new] = t.to(device=device, dtype=dtype)
            else:
                head_state[name] = f.get_tensor(name).to(device=device, dtype=dtype)
    missing = sorted({f"model.{u}" for u in UNUSED_WEIGHTS} - names)
    for module, state in ((backbone, backbone_state), (head, head_state)):
        expected = set(module.state_dict())
        missing += sorted(expected - set(state))
        unexpected = sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"{path} is not an MJ-VIDEO checkpoint: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]} ({len(missing)}/{len(unexpected)} in all)"
            )
        module.load_state_dict(state, strict=True, assign=True)
    backbone.language_model.rotary_emb = LlamaRotaryEmbedding(backbone.llm_config).to(device)
    if any(t.is_meta for m in (backbone, head) for t in (*m.parameters(), *m.buffers())):
        raise RuntimeError("mjvideo: some model tensors were not loaded (transformers layout changed?)")
    return backbone.eval(), head.eval()
