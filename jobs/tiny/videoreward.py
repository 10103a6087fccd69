"""A tiny random-weight VideoReward checkpoint in the released layout (tests, `make demo`, benchmarks).

Two folders, as the release needs them:
- `qwen2vl-base/`: the stand-in for `Qwen/Qwen2-VL-2B-Instruct` in its hub layout: a Qwen2-VL config, a byte-level
  BPE tokenizer trained offline with Qwen2-VL's special tokens, tokenizer_config.json and chat_template.json
  with Qwen2-VL-Instruct's chat template, preprocessor_config.json;
- `videoreward/`: model_config.json (data, model, peft and inference configs as VideoAlign writes them, with the
  release's calibration statistics) and `checkpoint-<step>/model.pth`: the PEFT-wrapped state dict of the
  reference's `Qwen2VLRewardModelBT` (transformers 4.45 names, `base_model.model.` prefix, LoRA A/B on the
  language model's linear layers), with the three reward tokens appended to the embedding.
Only widths and depths are tiny; `full=True` gives the published 2.2B sizes for GPU benchmarks.
"""

import json
from pathlib import Path

QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
)  # fmt: skip
# Qwen2-VL-Instruct's chat template (its default system turn, vision placeholders, generation prompt).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)
TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1, "mrope_section": [4, 6, 6]}  # fmt: skip
VISION = {"depth": 2, "embed_dim": 32, "num_heads": 2}
FULL_TEXT = {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
             "num_key_value_heads": 2, "mrope_section": [16, 24, 24]}  # fmt: skip
FULL_VISION = {"depth": 32, "embed_dim": 1280, "num_heads": 16}
LORA_R, LORA_ALPHA = 4, 8  # the release: 64, 128
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
STATS = {"VQ_mean": 3.6757, "VQ_std": 2.2476, "MQ_mean": 1.1646, "MQ_std": 1.3811, "TA_mean": 2.8105, "TA_std": 2.5121}
_CORPUS = """
A cat playing piano on a stage, cinematic lighting, 4k. A drone shot over a snowy mountain at sunrise.
Two astronauts riding horses on the moon. The quick brown fox jumps over the lazy dog; numbers 0123456789.
You are a helpful assistant. system user assistant. Visual Quality Motion Quality Text Alignment.
"""


def _tokenizer(out: Path) -> dict[str, int]:
    """Train a byte-level BPE the way Qwen2's tokenizer is built; returns the special tokens' ids."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    from vidscore.operators.scorers.videoreward import template

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([template(), _CORPUS] * 4, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in SPECIALS])
    tok.save(str(out / "tokenizer.json"))
    ids = {t: tok.token_to_id(t) for t in SPECIALS}
    decoder = {
        str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                 "special": True}
        for t, i in ids.items()
    }  # fmt: skip
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "Qwen2Tokenizer",
                "added_tokens_decoder": decoder,
                "bos_token": None,
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "unk_token": None,
                "model_max_length": 32768,
                "chat_template": CHAT_TEMPLATE,
                "errors": "replace",
                "clean_up_tokenization_spaces": False,
            },
            indent=2,
        )
    )
    (out / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2))
    return ids


def _config(ids: dict[str, int], vocab: int, full: bool) -> dict:
    text, vision = (FULL_TEXT, FULL_VISION) if full else (TEXT, VISION)
    rope = {"type": "mrope", "rope_type": "default", "mrope_section": text["mrope_section"]}
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "model_type": "qwen2_vl",
        "hidden_size": text["hidden_size"],
        "intermediate_size": text["intermediate_size"],
        "num_hidden_layers": text["num_hidden_layers"],
        "num_attention_heads": text["num_attention_heads"],
        "num_key_value_heads": text["num_key_value_heads"],
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": rope,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": True,
        "vocab_size": vocab,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "torch_dtype": "bfloat16",
        "vision_config": {
            "depth": vision["depth"],
            "embed_dim": vision["embed_dim"],
            "num_heads": vision["num_heads"],
            "hidden_size": text["hidden_size"],
            "mlp_ratio": 4,
            "in_chans": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
    }


def _preprocessor(out: Path) -> None:
    (out / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Qwen2VLImageProcessor",
                "processor_class": "Qwen2VLProcessor",
                "do_rescale": True,
                "rescale_factor": 1 / 255,
                "do_normalize": True,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
                "min_pixels": 3136,
                "max_pixels": 12845056,
                "patch_size": 14,
                "temporal_patch_size": 2,
                "merge_size": 2,
            },
            indent=2,
        )
    )


def build(
    out_dir: str | Path, seed: int = 0, full: bool = False, device: str = "cpu", output_dim: int = 1, step: int = 7
) -> Path:
    """Write both folders under `out_dir` and return the checkpoint folder (`out_dir/videoreward`)."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLModel

    from vidscore.operators.scorers.videoreward import REWARD_TOKENS

    out = Path(out_dir)
    base, ckpt = out / "qwen2vl-base", out / "videoreward"
    base.mkdir(parents=True, exist_ok=True)
    (ckpt / f"checkpoint-{step}").mkdir(parents=True, exist_ok=True)
    ids = _tokenizer(base)
    vocab = max(ids.values()) + 1
    config = _config(ids, vocab, full)
    (base / "config.json").write_text(json.dumps(config, indent=2))
    _preprocessor(base)

    torch.manual_seed(seed)
    qconfig = Qwen2VLConfig.from_pretrained(base)
    qconfig.text_config.vocab_size = vocab + len(REWARD_TOKENS)  # the reward tokens, appended by the reference
    with torch.device(device):
        model = Qwen2VLModel(qconfig)
        hidden = qconfig.text_config.hidden_size
        for p in model.parameters():  # tiny: larger than init so rewards differ between videos and prompts
            if p.dim() > 1 and not full:  # full size keeps the 0.02 init: activations stay in bf16's range
                torch.nn.init.normal_(p, std=0.2)
        head = torch.randn(output_dim, hidden, generator=torch.Generator(device).manual_seed(seed + 1), device=device)
    lora_scale = 0.02 if full else 0.1  # full size: LoRA's update stays small next to the 0.02 init
    state = {}
    for key, value in model.state_dict().items():
        old = key if key.startswith("visual.") else "model." + key.removeprefix("language_model.")
        module, _, param = old.rpartition(".")
        if module.rsplit(".", 1)[-1] in LORA_TARGETS and old.startswith("model."):
            state[f"base_model.model.{module}.base_layer.{param}"] = value
            if param == "weight":
                a = torch.randn(LORA_R, value.shape[1], device=device) * lora_scale
                b = torch.randn(value.shape[0], LORA_R, device=device) * lora_scale
                state[f"base_model.model.{module}.lora_A.default.weight"] = a
                state[f"base_model.model.{module}.lora_B.default.weight"] = b
        else:
            state[f"base_model.model.{old}"] = value
    state["base_model.model.lm_head.weight"] = state["base_model.model.model.embed_tokens.weight"]
    state["base_model.model.rm_head.weight"] = head * 0.5
    torch.save(
        {k: v.to(torch.bfloat16).cpu().clone() for k, v in state.items()}, ckpt / f"checkpoint-{step}" / "model.pth"
    )
    model_config = {
        "data_config": {"meta_data": "/path/to/meta.csv", "data_dir": "/path/to/data", "max_frame_pixels": 448 * 448,
                        "num_frames": None, "fps": 2.0, "eval_dim": ["VQ", "MQ", "TA"],
                        "prompt_template_type": "detailed_special", "sample_type": "uniform"},
        "model_config": {"model_name_or_path": str(base.resolve()), "output_dim": output_dim,
                         "use_special_tokens": True, "reward_token": "special"},
        "peft_lora_config": {"lora_enable": True, "vision_lora": False, "lora_r": LORA_R, "lora_alpha": LORA_ALPHA,
                             "lora_dropout": 0.05, "lora_target_modules": None, "num_lora_modules": -1,
                             "lora_namespan_exclude": ["lm_head", "rm_head", "embed_tokens", "visual"],
                             "lora_modules_to_save": None, "lora_task_type": "CAUSAL_LM", "use_rslora": False},
        "inference_config": STATS,
    }  # fmt: skip
    (ckpt / "model_config.json").write_text(json.dumps(model_config, indent=2))
    return ckpt
